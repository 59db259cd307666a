"""The terms of a loan: everything the schedule, APR and servicing math needs (pure data).

Rates are fractions (Decimal("0.12") is 12% a year). Amounts are Decimal in currency units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from mobilend.core.money import CENT, RoundingMode


class ScheduleType(StrEnum):
    ANNUITY = "annuity"  # 等额本息 equal installment
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_ONLY = "interest_only"  # 先息后本 interest-only then principal at maturity
    BULLET = "bullet"  # 到期还本付息 principal and all interest at maturity
    FLAT = "flat"  # flat-rate installments: interest on the original principal


class InterestPeriod(StrEnum):
    REPAYMENT = "repayment"  # periodic rate = annual rate / periods per year
    DAILY = "daily"  # interest accrues by day with a day count


class DayCount(StrEnum):
    ACT_365 = "act/365"  # actual/365 fixed
    ACT_360 = "act/360"
    THIRTY_360 = "30/360"  # 30/360 US (bond basis)
    ACT_ACT = "act/act"  # actual/actual ISDA


class InstallmentRounding(StrEnum):
    NEAREST = "nearest"  # round the level installment to the multiple with the rounding mode
    CEILING = "ceiling"  # round the level installment up to the multiple


class BusinessDayRule(StrEnum):
    NONE = "none"
    NEXT = "next"  # following business day
    PREVIOUS = "previous"  # preceding business day


class UpfrontFeeTreatment(StrEnum):
    DEDUCTED = "deducted"  # borrower receives principal - fee
    FINANCED = "financed"  # fee added to the principal that amortizes


class FrequencyUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    SEMIMONTH = "semimonth"
    MONTH = "month"


_PER_YEAR = {
    FrequencyUnit.DAY: Decimal(365),
    FrequencyUnit.WEEK: Decimal(52),
    FrequencyUnit.SEMIMONTH: Decimal(24),
    FrequencyUnit.MONTH: Decimal(12),
}
_NAMED_FREQUENCIES: dict[str, tuple[str, int]] = {
    "daily": ("day", 1),
    "weekly": ("week", 1),
    "biweekly": ("week", 2),
    "semimonthly": ("semimonth", 1),
    "monthly": ("month", 1),
    "quarterly": ("month", 3),
}


@dataclass(frozen=True, slots=True)
class Frequency:
    """Repayment frequency: every `count` units (e.g. every 2 weeks, every 3 months)."""

    unit: FrequencyUnit
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Frequency:
        """'monthly', 'weekly', ..., or 'every-N-days' / 'every-N-weeks' / 'every-N-months'."""
        key = text.strip().lower()
        if key in _NAMED_FREQUENCIES:
            unit, count = _NAMED_FREQUENCIES[key]
            return cls(FrequencyUnit(unit), count)
        parts = key.split("-")
        if len(parts) == 3 and parts[0] == "every" and parts[1].isdigit() and int(parts[1]) > 0:
            unit_name = parts[2].rstrip("s")
            if unit_name in ("day", "week", "month"):
                return cls(FrequencyUnit(unit_name), int(parts[1]))
        raise ValueError(
            f"unknown frequency {text!r}: use daily, weekly, biweekly, semimonthly, monthly,"
            " quarterly or every-N-days|weeks|months"
        )

    @property
    def periods_per_year(self) -> Decimal:
        return _PER_YEAR[self.unit] / self.count


@dataclass(frozen=True, slots=True)
class LoanTerms:
    principal: Decimal
    annual_rate: Decimal  # fraction, nominal per year
    periods: int
    frequency: Frequency
    start: date  # disbursement / interest start date
    schedule: ScheduleType = ScheduleType.ANNUITY
    interest_period: InterestPeriod = InterestPeriod.REPAYMENT
    day_count: DayCount = DayCount.ACT_365
    currency: str = "CNY"
    installment_multiple: Decimal = CENT  # installments rounded to this multiple
    installment_rounding: InstallmentRounding = InstallmentRounding.NEAREST
    rounding: RoundingMode = RoundingMode.HALF_EVEN
    principal_grace_periods: int = 0  # first N periods pay interest only
    interest_free_periods: int = 0  # first N periods charge no interest
    upfront_fee: Decimal = Decimal(0)
    upfront_fee_treatment: UpfrontFeeTreatment = UpfrontFeeTreatment.DEDUCTED
    installment_fee: Decimal = Decimal(0)  # fixed fee added to each installment
    business_day_rule: BusinessDayRule = BusinessDayRule.NONE
    calendar: str = "CN"  # holiday calendar country code
    first_due_date: date | None = None  # optional explicit first due date (odd first period)
    extra: dict[str, str] = field(default_factory=dict)
