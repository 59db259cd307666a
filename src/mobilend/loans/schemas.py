"""Pydantic shapes for products, quotes, loans and payments. Money and rates are decimal strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from mobilend.core.money import RoundingMode
from mobilend.loans.terms import (
    BusinessDayRule,
    DayCount,
    Frequency,
    InstallmentRounding,
    InterestPeriod,
    ScheduleType,
    UpfrontFeeTreatment,
)
from mobilend.servicing.policy import ServicingPolicy

Dec = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]
NonNeg = Annotated[Dec, Field(ge=0)]
Pos = Annotated[Dec, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def no_float(value: object) -> object:
    """A before-validator: JSON floats are refused wherever money or rates are read."""
    if isinstance(value, float):
        raise ValueError("money and rates must be decimal strings, not JSON floats")
    return value


class ProductConfig(Strict):
    """A loan product: defaults and limits for the loans booked under it."""

    schedule: ScheduleType = ScheduleType.ANNUITY
    frequency: str = "monthly"
    interest_period: InterestPeriod = InterestPeriod.REPAYMENT
    day_count: DayCount = DayCount.ACT_365
    annual_rate_pct: NonNeg = Decimal("12")
    min_annual_rate_pct: NonNeg = Decimal("0")
    max_annual_rate_pct: NonNeg = Decimal("24")
    apr_cap_pct: NonNeg = Decimal("24")  # legal cap on the annualized rate by IRR incl. fees
    penalty_rate_pct: NonNeg = Decimal("0")  # 罚息: annual rate on overdue principal
    late_fee: NonNeg = Decimal("0")  # charged once per installment when overdue past grace
    late_fee_grace_days: int = Field(default=0, ge=0)
    min_principal: Pos = Decimal("100")
    max_principal: Pos = Decimal("200000")
    min_periods: int = Field(default=1, ge=1)
    max_periods: int = Field(default=360, ge=1)
    installment_multiple: Pos = Decimal("0.01")
    installment_rounding: InstallmentRounding = InstallmentRounding.NEAREST
    rounding: RoundingMode = RoundingMode.HALF_EVEN
    principal_grace_periods: int = Field(default=0, ge=0)
    interest_free_periods: int = Field(default=0, ge=0)
    upfront_fee: NonNeg = Decimal("0")
    upfront_fee_treatment: UpfrontFeeTreatment = UpfrontFeeTreatment.DEDUCTED
    installment_fee: NonNeg = Decimal("0")
    business_day_rule: BusinessDayRule = BusinessDayRule.NONE
    calendar: str = "CN"
    waterfall: str = "penalty,fee,interest,principal"
    allocation_strategy: Literal["horizontal", "vertical"] = "horizontal"
    prepayment_mode: Literal["reduce_term", "reduce_installment"] = "reduce_installment"
    servicing_policy: ServicingPolicy = ServicingPolicy()  # read at each close, not frozen

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        Frequency.parse(value)
        return value

    @field_validator("waterfall")
    @classmethod
    def _waterfall(cls, value: str) -> str:
        from mobilend.core.errors import ValidationFailed
        from mobilend.loans.allocation import Waterfall

        try:
            return Waterfall.parse(value).text
        except ValidationFailed as exc:
            raise ValueError(f"{exc.detail} (rule {exc.rule})") from None

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        from mobilend.core.calendars import check_calendar
        from mobilend.core.errors import ValidationFailed

        try:
            check_calendar(value)
        except ValidationFailed as exc:
            raise ValueError(exc.detail) from None
        return value


class ProductIn(Strict):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=120)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    config: ProductConfig = ProductConfig()


class ProductOut(BaseModel):
    id: int
    code: str
    name: str
    currency: str
    config: ProductConfig


class QuoteIn(Strict):
    """Loan request: a product plus the borrower's choices; unset fields take product defaults."""

    product_code: str
    principal: Pos
    periods: int = Field(ge=1)
    start_date: date
    annual_rate_pct: NonNeg | None = None
    first_due_date: date | None = None

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class LoanIn(QuoteIn):
    borrower_ref: str = Field(default="", max_length=64)


class InstallmentOut(BaseModel):
    number: int
    start_date: date | None = None
    due_date: date
    principal: Dec
    interest: Dec
    fee: Dec
    total: Dec
    balance: Dec


class AprOut(BaseModel):
    irr_simple_pct: Dec
    irr_compound_pct: Dec


class QuoteOut(BaseModel):
    installments: list[InstallmentOut]
    total_interest: Dec
    total_fees: Dec
    total_payment: Dec
    disbursed_amount: Dec
    apr: AprOut


class AmountIn(Strict):
    amount: Pos
    value_date: date | None = None  # defaults to the business date
    reference: str = Field(default="", max_length=64)

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class DisburseIn(Strict):
    value_date: date | None = None


class PrepayIn(Strict):
    amount: Pos | None = None  # None: pay off in full
    mode: Literal["reduce_term", "reduce_installment"] | None = None
    value_date: date | None = None
    reference: str = Field(default="", max_length=64)

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class RefundIn(Strict):
    amount: Pos | None = None  # None: the whole credit balance
    value_date: date | None = None
    reference: str = Field(default="", max_length=64)

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class DateIn(Strict):
    value_date: date | None = None


class ReverseIn(Strict):
    value_date: date | None = None
    reason: str = Field(default="", max_length=200)
