"""Valuation: market vs curve basis, lending value, LTV, shortfall, prepayment to cure, status."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.collateral.valuation import (
    Valuation,
    loan_to_value,
    ltv_status,
    prepayment_to_cure,
    shortfall,
    value_device,
    value_from_reference,
)
from mobilend.core.errors import ValidationFailed
from mobilend.core.money import RoundingMode

D = Decimal
# Policy used in the scenarios: cure back to 70%, warn from 65%, call from 75%, sell from 85%.
MAX_LTV = D("0.70")
BANDS = {"warning": D("0.65"), "margin_call": D("0.75"), "liquidation": D("0.85")}


def device(**changes: Decimal | None) -> Valuation:
    args: dict[str, Decimal | None] = {
        "market_price": None,
        "launch_price": D("5999"),  # iPhone 15, 128 GB base variant
        "storage_factor": D("1.166694"),  # 256 GB: 6999 / 5999
        "curve_ratio": D("0.600000"),
        "grade_multiplier": D("0.75"),  # good
        "carrier_factor": D("1"),
        "forecast_ratio": D("0.900000"),
        "haircut": D("0.20"),
    }
    args.update(changes)
    return value_device(**args)  # type: ignore[arg-type]


def test_curve_basis_worked_example() -> None:
    # 5999 x 1.166694 = 6998.997306; x 0.6 = 4199.3983836; x 0.75 = 3149.5487877 -> 3149.55.
    # Forecast 3149.55 x 0.9 = 2834.595 -> 2834.60 (half-even: 2834.59 is odd, 2834.60 even).
    # Lending min(3149.55, 2834.60) x (1 - 0.20) = 2834.60 x 0.8 = 2267.68.
    assert device() == Valuation(D("3149.55"), D("2834.60"), D("2267.68"), D("0.20"), "curve")


def test_market_basis_ignores_grade_and_storage_but_not_the_carrier_lock() -> None:
    # Market price 3300.00 for this exact model/storage/grade; carrier-locked (0.85):
    # 3300 x 0.85 = 2805.00; forecast x 0.9 = 2524.50; lending x 0.8 = 2019.60.
    expected = Valuation(D("2805.00"), D("2524.50"), D("2019.60"), D("0.20"), "market")
    assert device(market_price=D("3300.00"), carrier_factor=D("0.85")) == expected
    assert (
        device(
            market_price=D("3300.00"),
            carrier_factor=D("0.85"),
            grade_multiplier=D("0.40"),
            storage_factor=D("2"),
        )
        == expected
    )


def test_curve_basis_applies_the_carrier_lock_too() -> None:
    # 3149.5487877 x 0.85 = 2677.1164695 -> 2677.12; x 0.9 = 2409.408 -> 2409.41;
    # x 0.8 = 1927.528 -> 1927.53.
    assert device(carrier_factor=D("0.85")) == Valuation(
        D("2677.12"), D("2409.41"), D("1927.53"), D("0.20"), "curve"
    )


def test_rounding_mode_is_a_setting() -> None:
    # 2834.45 x 0.5 = 1417.225: half-even -> 1417.22, half-up -> 1417.23.
    common = {
        "reference_value": D("2834.45"),
        "basis": "market",
        "carrier_factor": D("1"),
        "forecast_ratio": D("0.5"),
        "haircut": D("0"),
    }
    assert value_from_reference(**common).forecast_value == D("1417.22")  # type: ignore[arg-type]
    half_up = value_from_reference(**common, rounding=RoundingMode.HALF_UP)  # type: ignore[arg-type]
    assert (half_up.forecast_value, half_up.lending_value) == (D("1417.23"), D("1417.23"))


def test_zero_ratio_gives_zero_values() -> None:
    assert device(curve_ratio=D("0")) == Valuation(
        D("0.00"), D("0.00"), D("0.00"), D("0.20"), "curve"
    )


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"haircut": D("1")}, "haircut", "range"),
        ({"haircut": D("-0.1")}, "haircut", "range"),
        ({"forecast_ratio": D("1.1")}, "forecast_ratio", "range"),
        ({"curve_ratio": D("1.01")}, "curve_ratio", "range"),
        ({"grade_multiplier": D("0")}, "grade_multiplier", "range"),
        ({"carrier_factor": D("1.2")}, "carrier_factor", "range"),
        ({"market_price": D("0")}, "market_price", "positive"),
        ({"launch_price": D("-1")}, "launch_price", "positive"),
        ({"storage_factor": D("NaN")}, "storage_factor", "positive"),
    ],
)
def test_bad_inputs_name_the_field(changes: dict[str, Decimal], field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        device(**changes)
    assert (exc.value.field, exc.value.rule) == (field, rule)


# --- LTV ----------------------------------------------------------------------------------


def test_loan_to_value() -> None:
    assert loan_to_value(D("1500"), D("2000")) == D("0.7500")
    assert loan_to_value(D("1000"), D("3000")) == D("0.3334")  # 0.33333... rounded up
    assert loan_to_value(D("0"), D("0")) == D("0.0000")  # nothing owed
    assert loan_to_value(D("100"), D("0")) is None  # debt against no value
    with pytest.raises(ValidationFailed) as exc:
        loan_to_value(D("-1"), D("10"))
    assert (exc.value.field, exc.value.rule) == ("outstanding", "non-negative")


def test_worked_margin_call() -> None:
    # Outstanding 2000.00 against a phone now worth 2500.00: LTV 0.8000 > 0.70.
    # Shortfall (value terms): 2000 / 0.7 = 2857.142857...; - 2500 = 357.142857 -> up: 357.15.
    # Prepayment to cure: 2000 - 2500 x 0.7 = 2000 - 1750 = 250.00; (2000 - 250) / 2500 = 0.70.
    assert loan_to_value(D("2000.00"), D("2500.00")) == D("0.8000")
    assert shortfall(D("2000.00"), D("2500.00"), MAX_LTV) == D("357.15")
    assert prepayment_to_cure(D("2000.00"), D("2500.00"), MAX_LTV) == D("250.00")
    assert loan_to_value(D("1750.00"), D("2500.00")) == D("0.7000")
    assert shortfall(D("1750.00"), D("2500.00"), MAX_LTV) == D("0.00")


@pytest.mark.parametrize(
    ("value", "ltv", "status", "gap", "cure"),
    [
        # Outstanding 2000.00 throughout; the phone's value falls, then recovers.
        ("4000.00", "0.5000", "ok", "0.00", "0.00"),
        # 2000 / 2900 = 0.689655 -> 0.6897: warning; 2000 <= 2900 x 0.7 = 2030: nothing to cure.
        ("2900.00", "0.6897", "warning", "0.00", "0.00"),
        # 2000 / 2600 = 0.769230 -> 0.7693: margin call. 2857.142857 - 2600 = 257.142857
        # -> 257.15; cure 2000 - 2600 x 0.7 = 2000 - 1820 = 180.00.
        ("2600.00", "0.7693", "margin_call", "257.15", "180.00"),
        # 2000 / 2300 = 0.869565 -> 0.8696: liquidation. 2857.142857 - 2300 = 557.142857
        # -> 557.15; cure 2000 - 1610 = 390.00.
        ("2300.00", "0.8696", "liquidation", "557.15", "390.00"),
        # Recovery: 2000 / 3200 = 0.625 -> ok again; 2000 <= 2240.
        ("3200.00", "0.6250", "ok", "0.00", "0.00"),
    ],
)
def test_price_falls_then_recovers(value: str, ltv: str, status: str, gap: str, cure: str) -> None:
    outstanding = D("2000.00")
    got = loan_to_value(outstanding, D(value))
    assert got == D(ltv)
    assert ltv_status(got, **BANDS) == status
    assert shortfall(outstanding, D(value), MAX_LTV) == D(gap)
    assert prepayment_to_cure(outstanding, D(value), MAX_LTV) == D(cure)


def test_thresholds_are_inclusive_from_below() -> None:
    # 1950 / 2600 = 0.75 exactly: margin_call, not warning.
    assert loan_to_value(D("1950"), D("2600")) == D("0.7500")
    assert ltv_status(D("0.7500"), **BANDS) == "margin_call"
    assert ltv_status(D("0.6500"), **BANDS) == "warning"
    assert ltv_status(D("0.6499"), **BANDS) == "ok"
    assert ltv_status(D("0.8500"), **BANDS) == "liquidation"
    # Cure from 0.75: 1950 / 0.7 = 2785.714285 - 2600 = 185.714285 -> 185.72;
    # 1950 - 2600 x 0.7 = 1950 - 1820 = 130.00.
    assert shortfall(D("1950"), D("2600"), MAX_LTV) == D("185.72")
    assert prepayment_to_cure(D("1950"), D("2600"), MAX_LTV) == D("130.00")


def test_no_value_is_liquidation_and_bad_bands_are_refused() -> None:
    assert ltv_status(None, **BANDS) == "liquidation"
    with pytest.raises(ValidationFailed) as exc:
        ltv_status(D("0.5"), warning=D("0.8"), margin_call=D("0.75"), liquidation=D("0.85"))
    assert (exc.value.field, exc.value.rule) == ("thresholds", "threshold-order")


def test_max_ltv_is_validated() -> None:
    for bad, rule in ((D("0"), "range"), (D("1.2"), "range"), (D("0.70001"), "max-4-decimals")):
        with pytest.raises(ValidationFailed) as exc:
            shortfall(D("100"), D("200"), bad)
        assert (exc.value.field, exc.value.rule) == ("max_ltv", rule)


# --- properties ---------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10**8).map(lambda n: D(n).scaleb(-2))
positive_cents = st.integers(min_value=1, max_value=10**8).map(lambda n: D(n).scaleb(-2))
ratios = st.integers(min_value=0, max_value=10**6).map(lambda n: D(n).scaleb(-6))
max_ltvs = st.integers(min_value=1, max_value=10**4).map(lambda n: D(n).scaleb(-4))


@given(
    market=st.none() | positive_cents,
    curve_ratio=ratios,
    forecast_ratio=ratios,
    haircut=st.integers(min_value=0, max_value=9999).map(lambda n: D(n).scaleb(-4)),
    locked=st.booleans(),
)
def test_lending_value_never_exceeds_current_value(
    market: Decimal | None,
    curve_ratio: Decimal,
    forecast_ratio: Decimal,
    haircut: Decimal,
    locked: bool,
) -> None:
    result = device(
        market_price=market,
        curve_ratio=curve_ratio,
        forecast_ratio=forecast_ratio,
        haircut=haircut,
        carrier_factor=D("0.85") if locked else D("1"),
    )
    assert D(0) <= result.lending_value <= result.forecast_value <= result.current_value


@given(outstanding=cents, value=positive_cents, max_ltv=max_ltvs)
def test_shortfall_is_zero_exactly_when_ltv_is_within_max(
    outstanding: Decimal, value: Decimal, max_ltv: Decimal
) -> None:
    ltv = loan_to_value(outstanding, value)
    assert ltv is not None
    assert (shortfall(outstanding, value, max_ltv) == 0) == (ltv <= max_ltv)
    assert (prepayment_to_cure(outstanding, value, max_ltv) == 0) == (ltv <= max_ltv)


@given(outstanding=cents, value=positive_cents, max_ltv=max_ltvs)
def test_paying_or_pledging_the_amount_cures(
    outstanding: Decimal, value: Decimal, max_ltv: Decimal
) -> None:
    cure = prepayment_to_cure(outstanding, value, max_ltv)
    after_payment = loan_to_value(outstanding - cure, value)
    assert after_payment is not None and after_payment <= max_ltv
    after_pledge = loan_to_value(outstanding, value + shortfall(outstanding, value, max_ltv))
    assert after_pledge is not None and after_pledge <= max_ltv
