"""A pledged phone's value today, at the horizon and for lending; loan-to-value (pure).

Today's value has one of two bases, and `Valuation.basis` says which was used:

- "market": an aggregated market price exists for the exact model, storage AND grade
  (prices.aggregate, not stale). It already reflects the grade and the storage, so only the
  carrier factor applies: current = market_price x carrier_factor.
- "curve": no usable market price. current = launch_price x storage_factor x curve_ratio x
  grade_multiplier x carrier_factor, where launch_price is the base variant's launch price,
  storage_factor the variant's premium over it (grading.storage_factor) and curve_ratio the
  mint value ratio at today's age (depreciation.ratio_at).

Then forecast = current x forecast_ratio (depreciation.forecast_ratio from today to the horizon,
normally the loan's maturity) and lending = min(current, forecast) x (1 - haircut). Each figure
is rounded to the unit (the cent, half-even by default) and the next is computed from the rounded
figure, so the figures shown multiply out.

Loan-to-value, margin calls (docs/collateral-valuation.md has a worked example):

- loan_to_value = outstanding / value, rounded UP to 4 decimals (never understated); 0 when
  nothing is outstanding; None when something is outstanding against a value of 0.
- shortfall = max(0, outstanding / max_ltv - value): the collateral value missing, i.e. how much
  more value would be needed to bring the LTV back to max_ltv (Frappe Lending's "loan security
  shortfall", in value terms).
- prepayment_to_cure = max(0, outstanding - value x max_ltv): the cash that, paid off the loan,
  brings the LTV back to max_ltv. This is what a margin call (补仓) asks the borrower for.
  Both are rounded UP to the unit, so paying or pledging the amount really cures.
- ltv_status: "ok" below warning, then "warning", "margin_call", "liquidation" (平仓); each
  threshold belongs to the band it starts (an LTV equal to margin_call is "margin_call").
  A None LTV (debt against no value) is "liquidation".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import CENT, ZERO, RoundingMode, ceil_to, quantize

LTV_STEP = Decimal("0.0001")
ONE = Decimal(1)
STATUSES = ("ok", "warning", "margin_call", "liquidation")


@dataclass(frozen=True, slots=True)
class Valuation:
    current_value: Decimal
    forecast_value: Decimal
    lending_value: Decimal
    haircut: Decimal
    basis: str  # "market" | "curve"


def _between(
    name: str, value: Decimal, low: Decimal, high: Decimal, *, low_in: bool, high_in: bool
) -> None:
    above = value >= low if low_in else value > low
    below = value <= high if high_in else value < high
    if not (value.is_finite() and above and below):
        interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
        raise ValidationFailed(name, "range", f"{name} must be in {interval}, got {value}")


def _positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise ValidationFailed(name, "positive", f"{name} must be positive, got {value}")


def _non_negative(name: str, value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValidationFailed(name, "non-negative", f"{name} must be >= 0, got {value}")


def value_from_reference(
    *,
    reference_value: Decimal,
    basis: str,
    carrier_factor: Decimal,
    forecast_ratio: Decimal,
    haircut: Decimal,
    unit: Decimal = CENT,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
) -> Valuation:
    """The three values from today's reference value (before the carrier factor)."""
    if basis not in ("market", "curve"):
        raise ValidationFailed("basis", "unknown-basis", "basis must be market or curve")
    _non_negative("reference_value", reference_value)
    _between("carrier_factor", carrier_factor, ZERO, ONE, low_in=False, high_in=True)
    _between("forecast_ratio", forecast_ratio, ZERO, ONE, low_in=True, high_in=True)
    _between("haircut", haircut, ZERO, ONE, low_in=True, high_in=False)
    current = quantize(reference_value * carrier_factor, unit, rounding)
    forecast = quantize(current * forecast_ratio, unit, rounding)
    lending = quantize(min(current, forecast) * (ONE - haircut), unit, rounding)
    return Valuation(current, forecast, lending, haircut, basis)


def value_device(
    *,
    market_price: Decimal | None,
    launch_price: Decimal,
    storage_factor: Decimal,
    curve_ratio: Decimal,
    grade_multiplier: Decimal,
    carrier_factor: Decimal,
    forecast_ratio: Decimal,
    haircut: Decimal,
    unit: Decimal = CENT,
    rounding: RoundingMode = RoundingMode.HALF_EVEN,
) -> Valuation:
    """Value a device on the market basis when `market_price` is given, else on the curve."""
    _positive("launch_price", launch_price)
    _positive("storage_factor", storage_factor)
    _between("curve_ratio", curve_ratio, ZERO, ONE, low_in=True, high_in=True)
    _between("grade_multiplier", grade_multiplier, ZERO, ONE, low_in=False, high_in=True)
    if market_price is not None:
        _positive("market_price", market_price)
        reference, basis = market_price, "market"
    else:
        reference = launch_price * storage_factor * curve_ratio * grade_multiplier
        basis = "curve"
    return value_from_reference(
        reference_value=reference,
        basis=basis,
        carrier_factor=carrier_factor,
        forecast_ratio=forecast_ratio,
        haircut=haircut,
        unit=unit,
        rounding=rounding,
    )


def loan_to_value(outstanding: Decimal, value: Decimal) -> Decimal | None:
    """outstanding / value rounded up to 4 decimals; 0 if nothing owed; None if value is 0."""
    _non_negative("outstanding", outstanding)
    _non_negative("value", value)
    if outstanding == 0:
        return Decimal("0.0000")
    if value == 0:
        return None
    return (outstanding / value).quantize(LTV_STEP, rounding=ROUND_CEILING)


def _margin_inputs(outstanding: Decimal, value: Decimal, max_ltv: Decimal) -> None:
    _non_negative("outstanding", outstanding)
    _non_negative("value", value)
    _between("max_ltv", max_ltv, ZERO, ONE, low_in=False, high_in=True)
    if max_ltv != max_ltv.quantize(LTV_STEP):
        raise ValidationFailed("max_ltv", "max-4-decimals", "max_ltv has more than 4 decimals")


def shortfall(outstanding: Decimal, value: Decimal, max_ltv: Decimal) -> Decimal:
    """Collateral value missing: max(0, outstanding / max_ltv - value), up to the cent."""
    _margin_inputs(outstanding, value, max_ltv)
    if outstanding <= value * max_ltv:
        return Decimal("0.00")
    return ceil_to(outstanding / max_ltv - value, CENT)


def prepayment_to_cure(outstanding: Decimal, value: Decimal, max_ltv: Decimal) -> Decimal:
    """Cash that cures a margin call: max(0, outstanding - value x max_ltv), up to the cent."""
    _margin_inputs(outstanding, value, max_ltv)
    if outstanding <= value * max_ltv:
        return Decimal("0.00")
    return ceil_to(outstanding - value * max_ltv, CENT)


def ltv_status(
    ltv: Decimal | None, *, warning: Decimal, margin_call: Decimal, liquidation: Decimal
) -> str:
    """ "ok" | "warning" | "margin_call" | "liquidation"; thresholds inclusive from below."""
    if not (ZERO < warning < margin_call < liquidation):
        raise ValidationFailed(
            "thresholds",
            "threshold-order",
            "need 0 < warning < margin_call < liquidation",
        )
    if ltv is None or ltv >= liquidation:
        return "liquidation"
    if ltv >= margin_call:
        return "margin_call"
    if ltv >= warning:
        return "warning"
    return "ok"
