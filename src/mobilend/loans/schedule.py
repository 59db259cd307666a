"""Repayment schedules: due dates, principal, interest and fees per installment (pure).

Conventions
-----------
* Due dates are `core.dates.nominal_due_dates` rolled by the terms' business-day rule and
  calendar. Interest accrues to the ADJUSTED due date, as Chinese banks do: period k runs from
  the previous adjusted due date (the start date for k = 1) to its own adjusted due date, so
  the periods tile the loan's life with no gap or overlap. Adjusted dates must stay strictly
  increasing and after the start, otherwise the terms are rejected (field business_day_rule).
* Interest of a period on a base B (the outstanding principal; the original principal for FLAT):
  REPAYMENT basis: B * annual_rate / periods_per_year, whatever the period's length (an odd
  first period is not pro-rated; use DAILY for that); DAILY basis:
  B * annual_rate * year_fraction(period start, period end, day_count). Each interest amount is
  quantized to the currency's minor unit with `terms.rounding`. Interest-free periods (the
  first `interest_free_periods`) charge 0.
* Principal: the first `principal_grace_periods` periods repay no principal (interest only);
  the remaining m periods amortize:
  - ANNUITY 等额本息: a level installment (principal + interest, fees excluded)
    A = P / sum_k prod_{j<=k} 1/(1 + i_j) over the m periods, i_j = annual_rate /
    periods_per_year (0 in an interest-free period); without interest-free periods this is
    P * i / (1 - (1 + i)^-m). DAILY interest uses the same nominal A; each period's principal
    is A minus that period's actual interest.
  - EQUAL_PRINCIPAL 等额本金 and FLAT: a level principal part P / m.
  - INTEREST_ONLY 先息后本: all principal in the last period.
  - BULLET 到期还本付息: ONE installment at the last due date paying all principal and the
    simple (not compounded) interest of all periods, quantized once.
  The level installment (ANNUITY) or principal part (EQUAL_PRINCIPAL, FLAT) is rounded to
  `installment_multiple` (NEAREST with `terms.rounding`, or CEILING); the last installment
  repays whatever principal is left, so principal parts sum exactly to the financed principal.
  A rounding so coarse that the loan is repaid before its last period is rejected
  (field installment_multiple).
* Fees: `installment_fee` is added to every installment (once for a BULLET). The upfront fee is
  DEDUCTED (the borrower receives principal - fee and repays principal) or FINANCED (the
  borrower receives principal and repays principal + fee, which amortizes and bears interest).
  `Schedule.total_fees` counts the upfront fee and the installment fees, so
  total_payment - disbursed_amount = total_interest + total_fees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Literal

from mobilend.core.calendars import adjust, check_calendar
from mobilend.core.dates import nominal_due_dates, year_fraction
from mobilend.core.errors import ValidationFailed
from mobilend.core.money import ZERO, ceil_to, minor_unit, quantize
from mobilend.loans.terms import (
    BusinessDayRule,
    InstallmentRounding,
    InterestPeriod,
    LoanTerms,
    ScheduleType,
    UpfrontFeeTreatment,
)

PrepaymentMode = Literal["reduce_installment", "reduce_term"]
_LEVEL_TYPES = (ScheduleType.ANNUITY, ScheduleType.EQUAL_PRINCIPAL, ScheduleType.FLAT)


@dataclass(frozen=True, slots=True)
class Installment:
    number: int
    start_date: date  # interest period start (previous due date, or the loan start)
    due_date: date  # business-day adjusted; interest accrues up to it
    principal: Decimal
    interest: Decimal
    fee: Decimal
    total: Decimal
    balance: Decimal  # principal outstanding after this installment


@dataclass(frozen=True)
class Schedule:
    terms: LoanTerms
    installments: tuple[Installment, ...]
    financed_principal: Decimal  # principal + financed upfront fee: what amortizes
    disbursed_amount: Decimal  # principal - deducted upfront fee: what the borrower receives
    upfront_fee: Decimal
    total_interest: Decimal
    total_fees: Decimal  # upfront fee + installment fees
    total_payment: Decimal  # sum of installment totals

    def borrower_cash_flows(self) -> list[tuple[date, Decimal]]:
        """(date, amount) for APR/IRR: -disbursed_amount at the start, then each total (> 0)."""
        flows = [(self.terms.start, -self.disbursed_amount)]
        flows.extend((item.due_date, item.total) for item in self.installments)
        return flows


@dataclass(frozen=True, slots=True)
class _Period:
    number: int  # the period's number in the original schedule (grace, interest-free)
    start: date
    end: date


def build_schedule(terms: LoanTerms) -> Schedule:
    """The full repayment schedule of `terms` (see the module notes for conventions)."""
    validate_terms(terms)
    unit = minor_unit(terms.currency)  # amounts are whole minor units: show them at that scale
    fee = terms.upfront_fee.quantize(unit)
    principal = terms.principal.quantize(unit)
    financed = principal + fee
    disbursed = principal
    if terms.upfront_fee_treatment is UpfrontFeeTreatment.DEDUCTED:
        financed, disbursed = principal, principal - fee
    installments = _amortize(terms, financed, _periods(terms), level=None)
    expected = 1 if terms.schedule is ScheduleType.BULLET else terms.periods
    if len(installments) < expected:
        raise ValidationFailed(
            "installment_multiple",
            "too-coarse",
            f"installments rounded to {terms.installment_multiple} repay the loan early",
        )
    return Schedule(
        terms=terms,
        installments=tuple(installments),
        financed_principal=financed,
        disbursed_amount=disbursed,
        upfront_fee=fee,
        total_interest=sum((i.interest for i in installments), ZERO),
        total_fees=fee + sum((i.fee for i in installments), ZERO),
        total_payment=sum((i.total for i in installments), ZERO),
    )


def due_dates(terms: LoanTerms) -> list[date]:
    """Nominal due dates rolled by the business-day rule; strictly increasing, after start."""
    nominal = nominal_due_dates(terms.start, terms.frequency, terms.periods, terms.first_due_date)
    if terms.business_day_rule is BusinessDayRule.NONE:
        return nominal
    check_calendar(terms.calendar)
    adjusted = [adjust(d, terms.business_day_rule, terms.calendar) for d in nominal]
    for previous, current in pairwise([terms.start, *adjusted]):
        if current <= previous:
            raise ValidationFailed(
                "business_day_rule",
                "distinct-due-dates",
                f"rolling due dates with {terms.business_day_rule} merges {current} with an"
                " earlier date or the start",
            )
    return adjusted


def reschedule_after_prepayment(
    schedule_terms: LoanTerms,
    *,
    remaining_principal: Decimal,
    from_date: date,
    remaining_due_dates: list[date],
    mode: PrepaymentMode,
    current_installment: Decimal,
) -> list[Installment]:
    """Re-amortize `remaining_principal` after a partial prepayment.

    `from_date` is the date to which interest is settled (usually the last paid due date; on
    the REPAYMENT basis the first remaining period is charged in full, so a mid-period date
    needs DAILY interest to be exact). `remaining_due_dates` are the unpaid, already adjusted
    due dates; they are taken to be the LAST periods of the original schedule, so grace and
    interest-free periods keep their original numbers.

    reduce_installment keeps every remaining due date and recomputes the level amount.
    reduce_term keeps `current_installment` and stops when the principal is repaid; the last
    date used absorbs the remainder, the unused dates are dropped. `current_installment` is the
    level installment (principal + interest, no fee) for ANNUITY and the level principal part
    for EQUAL_PRINCIPAL and FLAT (FLAT interest is then on `remaining_principal`). INTEREST_ONLY
    and BULLET have no level amount: both modes keep the maturity and lower the interest.

    The installments are numbered from 1; the caller renumbers them into the loan's schedule.
    """
    validate_terms(schedule_terms)
    if mode not in ("reduce_installment", "reduce_term"):
        raise ValidationFailed("mode", "known-mode", f"unknown prepayment mode {mode!r}")
    _check_amount(schedule_terms, "remaining_principal", remaining_principal, allow_zero=True)
    if remaining_principal == 0:
        return []
    if not remaining_due_dates or len(remaining_due_dates) > schedule_terms.periods:
        raise ValidationFailed(
            "remaining_due_dates", "count", "between 1 and `periods` remaining due dates needed"
        )
    starts = [from_date, *remaining_due_dates[:-1]]
    if any(end <= start for start, end in zip(starts, remaining_due_dates, strict=True)):
        raise ValidationFailed(
            "remaining_due_dates", "increasing", "due dates must increase and follow from_date"
        )
    if schedule_terms.schedule is ScheduleType.BULLET:
        periods = _bullet_periods_after(schedule_terms, from_date, remaining_due_dates[-1])
    else:
        offset = schedule_terms.periods - len(remaining_due_dates)
        periods = [
            _Period(offset + k + 1, start, end)
            for k, (start, end) in enumerate(zip(starts, remaining_due_dates, strict=True))
        ]
    level = None
    if mode == "reduce_term" and schedule_terms.schedule in _LEVEL_TYPES:
        _check_amount(schedule_terms, "current_installment", current_installment)
        level = current_installment
    return _amortize(schedule_terms, remaining_principal, periods, level=level)


def _periods(terms: LoanTerms) -> list[_Period]:
    dates = due_dates(terms)
    starts = [terms.start, *dates[:-1]]
    return [_Period(k + 1, s, e) for k, (s, e) in enumerate(zip(starts, dates, strict=True))]


def _bullet_periods_after(terms: LoanTerms, from_date: date, maturity: date) -> list[_Period]:
    """A BULLET's original periods still running after `from_date`, the first one clipped."""
    periods = [p for p in _periods(terms) if p.end > from_date]
    if not periods or periods[-1].end != maturity:
        raise ValidationFailed(
            "remaining_due_dates", "maturity", "a bullet loan's last due date is its maturity"
        )
    first = periods[0]
    periods[0] = _Period(first.number, max(first.start, from_date), first.end)
    return periods


def _amortize(
    terms: LoanTerms, principal: Decimal, periods: list[_Period], *, level: Decimal | None
) -> list[Installment]:
    """Installments repaying `principal` over `periods`; stops early once it is repaid."""
    if terms.schedule is ScheduleType.BULLET:
        return [_bullet(terms, principal, periods)]
    amortizing = [p for p in periods if p.number > terms.principal_grace_periods]
    if level is None and terms.schedule in _LEVEL_TYPES:
        level = _round_level(terms, _level_amount(terms, principal, amortizing))
    balance = principal
    installments: list[Installment] = []
    for period in periods:
        base = principal if terms.schedule is ScheduleType.FLAT else balance
        interest = _interest(terms, base, period)
        if period is periods[-1]:
            part = balance
        elif level is None or period.number <= terms.principal_grace_periods:
            part = ZERO  # INTEREST_ONLY, or a grace period
        elif terms.schedule is ScheduleType.ANNUITY:
            part = min(max(level - interest, ZERO), balance)
        else:
            part = min(level, balance)
        balance -= part
        number = len(installments) + 1
        installments.append(_installment(terms, number, period, part, interest, balance))
        if balance == 0:
            break
    return installments


def _bullet(terms: LoanTerms, principal: Decimal, periods: list[_Period]) -> Installment:
    """One installment: all principal plus the simple interest of every period."""
    raw = sum((_raw_interest(terms, principal, p) for p in periods), ZERO)
    interest = quantize(raw, minor_unit(terms.currency), terms.rounding)
    whole = _Period(periods[-1].number, periods[0].start, periods[-1].end)
    return _installment(terms, 1, whole, principal, interest, ZERO)


def _installment(
    terms: LoanTerms,
    number: int,
    period: _Period,
    principal: Decimal,
    interest: Decimal,
    balance: Decimal,
) -> Installment:
    fee = terms.installment_fee.quantize(minor_unit(terms.currency))
    return Installment(
        number=number,
        start_date=period.start,
        due_date=period.end,
        principal=principal,
        interest=interest,
        fee=fee,
        total=principal + interest + fee,
        balance=balance,
    )


def _raw_interest(terms: LoanTerms, base: Decimal, period: _Period) -> Decimal:
    if period.number <= terms.interest_free_periods:
        return ZERO
    if terms.interest_period is InterestPeriod.REPAYMENT:
        return base * terms.annual_rate / terms.frequency.periods_per_year
    return base * terms.annual_rate * year_fraction(period.start, period.end, terms.day_count)


def _interest(terms: LoanTerms, base: Decimal, period: _Period) -> Decimal:
    raw = _raw_interest(terms, base, period)
    return quantize(raw, minor_unit(terms.currency), terms.rounding)


def _level_amount(terms: LoanTerms, principal: Decimal, amortizing: list[_Period]) -> Decimal:
    """Unrounded level installment (ANNUITY) or principal part (EQUAL_PRINCIPAL, FLAT)."""
    if terms.schedule is not ScheduleType.ANNUITY:
        return principal / len(amortizing)
    nominal = terms.annual_rate / terms.frequency.periods_per_year
    factor, discount = ZERO, Decimal(1)
    for period in amortizing:
        rate = ZERO if period.number <= terms.interest_free_periods else nominal
        discount /= 1 + rate
        factor += discount
    return principal / factor


def _round_level(terms: LoanTerms, amount: Decimal) -> Decimal:
    if terms.installment_rounding is InstallmentRounding.CEILING:
        return ceil_to(amount, terms.installment_multiple)
    return quantize(amount, terms.installment_multiple, terms.rounding)


def validate_terms(terms: LoanTerms) -> None:
    """Raise ValidationFailed naming the first field of `terms` that makes no sense."""
    _check_amount(terms, "principal", terms.principal)
    if not terms.annual_rate.is_finite() or terms.annual_rate < 0:
        raise ValidationFailed("annual_rate", "non-negative", "annual_rate must be >= 0")
    if terms.periods < 1:
        raise ValidationFailed("periods", "positive", "periods must be at least 1")
    if terms.frequency.count < 1:
        raise ValidationFailed("frequency", "positive-count", "frequency count must be >= 1")
    if not 0 <= terms.principal_grace_periods < terms.periods:
        raise ValidationFailed(
            "principal_grace_periods", "range", "principal grace must be in [0, periods)"
        )
    if not 0 <= terms.interest_free_periods <= terms.periods:
        raise ValidationFailed(
            "interest_free_periods", "range", "interest-free periods must be in [0, periods]"
        )
    _check_amount(terms, "upfront_fee", terms.upfront_fee, allow_zero=True)
    _check_amount(terms, "installment_fee", terms.installment_fee, allow_zero=True)
    deducted = terms.upfront_fee_treatment is UpfrontFeeTreatment.DEDUCTED
    if deducted and terms.upfront_fee >= terms.principal:
        raise ValidationFailed("upfront_fee", "below-principal", "deducted fee >= principal")
    _check_amount(terms, "installment_multiple", terms.installment_multiple)
    if terms.first_due_date is not None and terms.first_due_date <= terms.start:
        raise ValidationFailed("first_due_date", "after-start", "first due date <= start")


def _check_amount(
    terms: LoanTerms, field: str, amount: Decimal, *, allow_zero: bool = False
) -> None:
    """A finite amount, positive (or zero if allowed), in whole minor units of the currency."""
    unit = minor_unit(terms.currency)
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        rule = "non-negative" if allow_zero else "positive"
        raise ValidationFailed(field, rule, f"{field} must be {rule}, got {amount}")
    if amount % unit != 0:
        raise ValidationFailed(field, "minor-unit", f"{field} {amount} is not in units of {unit}")
