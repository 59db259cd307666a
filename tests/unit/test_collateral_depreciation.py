"""Depreciation: the fit recovers known curves; fallbacks model -> brand -> tier default."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.collateral.catalog import DeviceModel, Variant, seed_catalog
from mobilend.collateral.depreciation import (
    DepreciationCurve,
    PricePoint,
    curve_for,
    fit,
    forecast_ratio,
    price_point,
    ratio_at,
    tier_default,
)
from mobilend.core.errors import ValidationFailed

D = Decimal
SIX = D("0.000001")


def synthetic(
    k: float, d: float, *, successor_day: int = 365, noise: float = 0.0, ages: range | None = None
) -> list[PricePoint]:
    """Points on ratio = exp(-k t) (1 - d)^n, every 30 days to age 720, ratios to 6 decimals.

    With `noise`, prices alternate x(1 + noise) and x(1 - noise) (a deterministic wobble).
    """
    points = []
    for i, age in enumerate(ages or range(30, 750, 30)):
        after = age >= successor_day
        ratio = math.exp(-k * age / 365) * ((1 - d) if after else 1.0)
        ratio *= 1 + (noise if i % 2 else -noise)
        points.append(PricePoint(age, D(ratio).quantize(SIX), after))
    return points


def model(brand: str = "Acme", tier: str = "flagship") -> DeviceModel:
    return DeviceModel(
        "acme-one",
        brand,
        "One",
        date(2023, 1, 1),
        "CNY",
        (Variant(128, D("2999")),),
        (),
        None,
        tier,
    )


# --- the fit ------------------------------------------------------------------------------


def test_fit_recovers_decay_and_successor_drop() -> None:
    # k = 0.5 a year, a 10% drop when the successor launches at day 365; 24 points to day 720.
    # Ratios are rounded to 6 decimals, so the fit is exact to about 1e-5.
    curve = fit(synthetic(0.5, 0.10))
    assert curve is not None and curve.source == "model"
    assert curve.k == pytest.approx(0.5, abs=1e-4)
    assert curve.step == pytest.approx(0.10, abs=1e-4)


def test_fit_with_noise_stays_within_two_points() -> None:
    # +-3% alternating price noise: k and d still within 0.02 of the truth (k = 0.8, d = 0.15).
    curve = fit(synthetic(0.8, 0.15, noise=0.03))
    assert curve is not None
    assert curve.k == pytest.approx(0.8, abs=0.02)
    assert curve.step == pytest.approx(0.15, abs=0.02)


def test_without_points_after_the_successor_the_drop_is_zero() -> None:
    curve = fit(synthetic(0.3, 0.2, successor_day=10_000))
    assert curve is not None
    assert curve.k == pytest.approx(0.3, abs=1e-4)
    assert curve.step == 0.0


def test_price_jump_at_successor_is_not_a_negative_drop() -> None:
    # A 5% jump at the successor's launch (d = -0.05) is clamped to d = 0 and k refitted alone.
    curve = fit(synthetic(0.4, -0.05))
    assert curve is not None
    assert curve.step == 0.0
    assert 0.3 < curve.k < 0.4  # the jump pulls the single decay rate down


def test_rising_prices_give_no_decay() -> None:
    curve = fit(synthetic(-0.1, 0.0, successor_day=10_000))
    assert curve is not None
    assert (curve.k, curve.step) == (0.0, 0.0)


def test_too_few_points_or_too_short_a_span_gives_no_fit() -> None:
    assert fit(synthetic(0.5, 0.1)[:5]) is None  # 5 < MIN_POINTS = 6
    short = synthetic(0.5, 0.1, ages=range(100, 180, 10))  # 8 points over 70 days < 90
    assert fit(short) is None
    assert fit(short, min_points=6) is None


# --- fallbacks ----------------------------------------------------------------------------


def test_curve_for_prefers_the_models_own_points() -> None:
    curve = curve_for(model(), model_points=synthetic(0.5, 0.1), brand_points=synthetic(0.9, 0.2))
    assert curve.source == "model"
    assert curve.k == pytest.approx(0.5, abs=1e-4)


def test_curve_for_falls_back_to_the_brand() -> None:
    curve = curve_for(
        model(), model_points=synthetic(0.5, 0.1)[:3], brand_points=synthetic(0.9, 0.2)
    )
    assert curve.source == "brand"
    assert curve.k == pytest.approx(0.9, abs=1e-4)
    assert curve.step == pytest.approx(0.2, abs=1e-4)


def test_curve_for_falls_back_to_the_tier_default() -> None:
    curve = curve_for(model(), model_points=[], brand_points=synthetic(0.9, 0.2)[:2])
    assert curve == tier_default(model())
    assert curve.source == "tier-default"


@pytest.mark.parametrize(
    ("brand", "tier", "days", "expected"),
    [
        # FACTS.md: iPhone -13.8% in year 1 -> exp(-k) = 0.862 (any iPhone tier).
        ("Apple", "flagship", 365, "0.862000"),
        ("Apple", "budget", 365, "0.862000"),
        # Android flagship -32.1% in year 1 -> 0.679.
        ("Samsung", "flagship", 365, "0.679000"),
        # Budget Android -48.7% in year 1 -> 0.513; two years -> 0.513^2 = 0.263169.
        ("Xiaomi", "budget", 365, "0.513000"),
        ("Xiaomi", "budget", 730, "0.263169"),
        # Midrange: our interpolation, -40.4% -> 0.596.
        ("Honor", "midrange", 365, "0.596000"),
    ],
)
def test_tier_defaults_reproduce_the_facts(brand: str, tier: str, days: int, expected: str) -> None:
    curve = tier_default(model(brand, tier))
    assert curve.step == 0.0
    assert forecast_ratio(curve, from_age_days=0, to_age_days=days, successor_between=True) == D(
        expected
    )


def test_foldable_default_is_578_permille_lost_in_five_months() -> None:
    # 1 - 0.578 = 0.422 after 5/12 of a year: k = -ln(0.422) x 12 / 5 (about 2.07 a year).
    curve = tier_default(model("Honor", "foldable"))
    assert curve.k == pytest.approx(-math.log(0.422) * 12 / 5)
    assert curve.k == pytest.approx(2.0706, abs=1e-4)


def test_every_seed_model_has_a_tier_default() -> None:
    for device in seed_catalog():
        assert tier_default(device).source == "tier-default"


# --- ratios and forecasts -----------------------------------------------------------------

HALVING = DepreciationCurve(math.log(2), 0.25, "model")  # value halves every 365 days


def test_ratio_at() -> None:
    assert ratio_at(HALVING, age_days=0, after_successor=False) == D("1.000000")
    assert ratio_at(HALVING, age_days=365, after_successor=False) == D("0.500000")
    # After the successor: 0.5 x (1 - 0.25) = 0.375; two years: 0.25 x 0.75 = 0.1875.
    assert ratio_at(HALVING, age_days=365, after_successor=True) == D("0.375000")
    assert ratio_at(HALVING, age_days=730, after_successor=True) == D("0.187500")


def test_forecast_ratio() -> None:
    curve = DepreciationCurve(math.log(2), 0.2, "brand")
    # One more year (0.5) with the successor launching in between (x 0.8) = 0.4.
    assert forecast_ratio(curve, from_age_days=365, to_age_days=730, successor_between=True) == D(
        "0.400000"
    )
    assert forecast_ratio(curve, from_age_days=200, to_age_days=200, successor_between=False) == D(
        "1.000000"
    )
    with pytest.raises(ValidationFailed) as exc:
        forecast_ratio(curve, from_age_days=300, to_age_days=200, successor_between=False)
    assert exc.value.rule == "order"


@given(
    k=st.floats(min_value=0, max_value=5),
    step=st.floats(min_value=0, max_value=0.99),
    start=st.integers(min_value=0, max_value=3000),
    span=st.integers(min_value=0, max_value=3000),
    successor=st.booleans(),
)
def test_forecast_ratio_never_exceeds_one(
    k: float, step: float, start: int, span: int, successor: bool
) -> None:
    curve = DepreciationCurve(k, step, "model")
    ratio = forecast_ratio(
        curve, from_age_days=start, to_age_days=start + span, successor_between=successor
    )
    assert D(0) <= ratio <= D(1)


# --- points from prices -------------------------------------------------------------------


def test_price_point_from_a_graded_quote() -> None:
    iphone_15 = next(m for m in seed_catalog() if m.key == "apple-iphone-15")
    # Released 2023-09-22; quoted 2024-09-22 = 366 days later (2024 is a leap year).
    # 256 GB launched at 6999; grade good (0.75): 6999 x 0.75 = 5249.25 and
    # 3149.55 / 5249.25 = 0.6 exactly (5249.25 x 0.6 = 3149.55). iPhone 16 came out 2024-09-20.
    point = price_point(
        model=iphone_15,
        storage_gb=256,
        grade="good",
        price=D("3149.55"),
        quoted_on=date(2024, 9, 22),
        successor_release=date(2024, 9, 20),
    )
    assert point == PricePoint(366, D("0.6"), True)
    with pytest.raises(ValidationFailed) as exc:
        price_point(
            model=iphone_15,
            storage_gb=256,
            grade="good",
            price=D("3149.55"),
            quoted_on=date(2023, 9, 1),
            successor_release=None,
        )
    assert exc.value.rule == "before-release"


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"age_days": -1, "ratio": D("0.5"), "after_successor": False}, "non-negative"),
        ({"age_days": 10, "ratio": D("0"), "after_successor": False}, "positive"),
    ],
)
def test_bad_points(kwargs: dict[str, object], rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        PricePoint(**kwargs)  # type: ignore[arg-type]
    assert exc.value.rule == rule


def test_bad_curves() -> None:
    with pytest.raises(ValidationFailed):
        DepreciationCurve(-0.1, 0.0, "model")
    with pytest.raises(ValidationFailed):
        DepreciationCurve(0.1, 1.0, "model")
    with pytest.raises(ValidationFailed):
        DepreciationCurve(0.1, 0.0, "guess")
