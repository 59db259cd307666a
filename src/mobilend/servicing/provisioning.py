"""Loan loss provision 贷款损失准备 per loan, by expected loss or by regulatory tier rates (pure).

Two methods, chosen by `ProvisionSettings.method`:

- expected_loss:   provision = PD x LGD x max(0, EAD - C)
- regulatory_rate: provision = rate(tier) x EAD           (x max(0, EAD - C) if net_of_collateral)

EAD is the exposure at default (what the borrower owes on the loan: the caller decides which
components, typically outstanding principal plus overdue interest, fees and penalty). C is the
lending value of the pledged phone (collateral.valuation: min(today, horizon) x (1 - haircut));
with no pledge C = 0. The exposure net of collateral is floored at 0, so a loan covered by its
phone provisions nothing under expected loss. PD comes from the loan's five-tier class or from
its DPD bucket, LGD from the product (the loss rate on the unsecured part).

The regulatory rates default to the PBoC 银行贷款损失准备计提指引 (银发〔2002〕98号): specific
reserves of 2% for special mention, 25% substandard, 50% doubtful, 100% loss (substandard and
doubtful may float by +-20%, so they are settings), plus a general reserve of 1% of loans,
which the default table charges on normal loans. See docs/delinquency.md.

Everything is Decimal; the product is rounded once, at the end, to the unit (the cent,
ROUND_HALF_EVEN by default). EAD must already be a multiple of the unit, so with rates and PD,
LGD in [0, 1] the provision never exceeds the exposure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import CENT, ZERO, RoundingMode, quantize
from mobilend.servicing.classification import LoanClass

ONE = Decimal(1)
_PRECISION = 60  # exact for products of a few short decimals


class ProvisionMethod(StrEnum):
    EXPECTED_LOSS = "expected_loss"
    REGULATORY_RATE = "regulatory_rate"


def _check_share(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not ZERO <= value <= ONE:
        raise ValidationFailed(name, "range", f"{name} must be a Decimal in [0, 1], got {value!r}")


def _check_amount(name: str, value: Decimal, unit: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValidationFailed(
            name, "non-negative", f"{name} must be a Decimal >= 0, got {value!r}"
        )
    if value % unit != 0:
        raise ValidationFailed(name, "unit", f"{name} must be a multiple of {unit}, got {value}")


@dataclass(frozen=True, slots=True)
class ClassRates:
    """A rate in [0, 1] for each of the five tiers (a PD table or a provision-rate table)."""

    normal: Decimal
    special_mention: Decimal
    substandard: Decimal
    doubtful: Decimal
    loss: Decimal

    def __post_init__(self) -> None:
        for loan_class in LoanClass:
            _check_share(loan_class.value, self.for_class(loan_class))

    def for_class(self, loan_class: LoanClass) -> Decimal:
        rate: Decimal = getattr(self, loan_class.value)
        return rate


# PBoC 银发〔2002〕98号: 2% / 25% / 50% / 100% specific, 1% general reserve on normal loans.
PBOC_2002_RATES = ClassRates(
    normal=Decimal("0.01"),
    special_mention=Decimal("0.02"),
    substandard=Decimal("0.25"),
    doubtful=Decimal("0.50"),
    loss=Decimal("1"),
)


@dataclass(frozen=True, slots=True)
class Provision:
    """How a provision was reached: base x rate = amount (before rounding)."""

    method: ProvisionMethod
    exposure: Decimal  # EAD
    collateral_deducted: Decimal  # exposure - base: the part of EAD the pledge covers
    base: Decimal  # what the rate applies to
    rate: Decimal  # PD x LGD, or the tier's regulatory rate
    amount: Decimal  # base x rate, rounded to the unit
    pd: Decimal | None = None
    lgd: Decimal | None = None


def _net(exposure: Decimal, collateral_value: Decimal | None, unit: Decimal) -> Decimal:
    if collateral_value is None:
        return exposure
    _check_amount("collateral_value", collateral_value, unit)
    return max(ZERO, exposure - collateral_value)


def expected_loss(
    *,
    exposure: Decimal,
    pd: Decimal,
    lgd: Decimal,
    collateral_value: Decimal | None = None,
    unit: Decimal = CENT,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
) -> Provision:
    """PD x LGD x max(0, EAD - collateral lending value), rounded once to the unit."""
    _check_amount("exposure", exposure, unit)
    _check_share("pd", pd)
    _check_share("lgd", lgd)
    base = _net(exposure, collateral_value, unit)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        rate = pd * lgd
        amount = quantize(base * rate, unit, rounding)
    deducted = exposure - base
    return Provision(
        ProvisionMethod.EXPECTED_LOSS, exposure, deducted, base, rate, amount, pd=pd, lgd=lgd
    )


def regulatory_provision(
    *,
    exposure: Decimal,
    loan_class: LoanClass,
    rates: ClassRates = PBOC_2002_RATES,
    collateral_value: Decimal | None = None,
    net_of_collateral: bool = False,
    unit: Decimal = CENT,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
) -> Provision:
    """The tier's rate x EAD (x EAD net of collateral when net_of_collateral), rounded."""
    _check_amount("exposure", exposure, unit)
    net = _net(exposure, collateral_value, unit)
    base = net if net_of_collateral else exposure
    rate = rates.for_class(loan_class)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        amount = quantize(base * rate, unit, rounding)
    return Provision(ProvisionMethod.REGULATORY_RATE, exposure, exposure - base, base, rate, amount)


@dataclass(frozen=True)
class ProvisionSettings:
    """A product's provisioning settings.

    expected_loss needs `lgd` and exactly one PD table: `pd_by_class` (by five-tier class) or
    `pd_by_bucket` (bucket name -> PD, names as in the product's BucketScheme).
    """

    method: ProvisionMethod = ProvisionMethod.REGULATORY_RATE
    regulatory_rates: ClassRates = PBOC_2002_RATES
    net_of_collateral: bool = False  # regulatory method only; expected loss always nets
    pd_by_class: ClassRates | None = None
    pd_by_bucket: Mapping[str, Decimal] | None = None
    lgd: Decimal | None = None
    unit: Decimal = CENT
    rounding: RoundingMode = RoundingMode.HALF_EVEN

    def __post_init__(self) -> None:
        if not isinstance(self.method, ProvisionMethod):
            raise ValidationFailed(
                "method", "one-of", f"method must be one of {list(ProvisionMethod)}"
            )
        if not isinstance(self.unit, Decimal) or not self.unit.is_finite() or self.unit <= 0:
            raise ValidationFailed("unit", "positive", "unit must be a positive Decimal")
        if self.pd_by_bucket is not None:
            table = dict(self.pd_by_bucket)
            for name, pd in table.items():
                _check_share(f"pd_by_bucket[{name}]", pd)
            object.__setattr__(self, "pd_by_bucket", MappingProxyType(table))
        if self.lgd is not None:
            _check_share("lgd", self.lgd)
        if self.method is ProvisionMethod.EXPECTED_LOSS:
            if self.lgd is None:
                raise ValidationFailed("lgd", "required", "expected_loss needs an LGD")
            if (self.pd_by_class is None) == (self.pd_by_bucket is None):
                raise ValidationFailed(
                    "pd",
                    "one-table",
                    "expected_loss needs exactly one of pd_by_class, pd_by_bucket",
                )


def provision_for(
    *,
    exposure: Decimal,
    loan_class: LoanClass,
    settings: ProvisionSettings,
    bucket: str | None = None,
    collateral_value: Decimal | None = None,
) -> Provision:
    """One loan's provision by the method its product's settings name.

    `bucket` is needed only when PD comes by bucket; `collateral_value` is the pledged phone's
    lending value, None when the loan has no pledge.
    """
    if settings.method is ProvisionMethod.REGULATORY_RATE:
        return regulatory_provision(
            exposure=exposure,
            loan_class=loan_class,
            rates=settings.regulatory_rates,
            collateral_value=collateral_value,
            net_of_collateral=settings.net_of_collateral,
            unit=settings.unit,
            rounding=settings.rounding,
        )
    if settings.lgd is None:  # ProvisionSettings refuses this; kept for the type checker
        raise ValidationFailed("lgd", "required", "expected_loss needs an LGD")
    return expected_loss(
        exposure=exposure,
        pd=_pd(settings, loan_class, bucket),
        lgd=settings.lgd,
        collateral_value=collateral_value,
        unit=settings.unit,
        rounding=settings.rounding,
    )


def _pd(settings: ProvisionSettings, loan_class: LoanClass, bucket: str | None) -> Decimal:
    if settings.pd_by_class is not None:
        return settings.pd_by_class.for_class(loan_class)
    table = settings.pd_by_bucket or {}
    if bucket is None:
        raise ValidationFailed("bucket", "required", "PD by bucket needs the loan's bucket")
    pd = table.get(bucket)
    if pd is None:
        raise ValidationFailed("bucket", "unknown-bucket", f"no PD set for bucket {bucket!r}")
    return pd
