"""How a phone model's value falls with age: a curve fitted from price history (pure).

Model. A mint device of age t years (t = age_days / 365) is worth, relative to its launch price,

    ratio(t) = exp(-k t) x (1 - d) ** n

where k is the yearly exponential decay and d the one-time drop when the model's successor
launches: n = 1 once the successor is out, else 0 (later generations are left to the decay).

Fit. On log(ratio) the model is linear with no intercept: log r = -k t + log(1 - d) n. `fit`
solves the 2x2 least-squares normal equations in closed form. A drop that comes out negative
(a price jump at the successor's launch) is set to 0 and k refitted alone; a k that comes out
negative (a model gaining value) is set to 0 and d refitted alone. It needs MIN_POINTS points
spanning MIN_SPAN_DAYS days, and both after-successor and before-successor points to identify
d (without after-successor points d = 0).

Fallbacks (`curve_for`): the model's own points, else the brand's pooled points (every model of
the brand, each ratio against its own launch price), else a tier default from the BankMyCell
trade-in figures in FACTS.md, with d = 0 (the yearly figures already include successor launches):
iPhones (any tier) lose 13.8% in year 1; Android flagships 32.1%; budget Android 48.7%;
midrange Android 40.4% (our interpolation, half-way between flagship and budget: no published
figure); foldables 57.8% in 5 months (a k of about 2.07 a year, deliberately harsh).

Ratios leave as Decimals with 6 decimals (half-even); floats are used only inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from mobilend.collateral.catalog import DeviceModel
from mobilend.collateral.grading import grade_multiplier
from mobilend.core.errors import ValidationFailed

DAYS_PER_YEAR = 365
MIN_POINTS = 6
MIN_SPAN_DAYS = 90
RATIO_STEP = Decimal("0.000001")
SOURCES = ("model", "brand", "tier-default")

# FACTS.md, "Used-phone values" (BankMyCell trade-in data): share of value lost.
APPLE_YEAR1_LOSS = 0.138  # iPhone, year 1 (2021-22)
ANDROID_YEAR1_LOSS = {"flagship": 0.321, "midrange": 0.404, "budget": 0.487}
FOLDABLE_LOSS, FOLDABLE_MONTHS = 0.578, 5


@dataclass(frozen=True, slots=True)
class PricePoint:
    age_days: int  # days since the model's release
    ratio: Decimal  # observed price / (variant launch price x grade multiplier)
    after_successor: bool  # was the successor model out on that day?

    def __post_init__(self) -> None:
        if isinstance(self.age_days, bool) or not isinstance(self.age_days, int):
            raise ValidationFailed("age_days", "integer", "age_days must be a whole number")
        if self.age_days < 0:
            raise ValidationFailed("age_days", "non-negative", "age_days must be >= 0")
        if not self.ratio.is_finite() or self.ratio <= 0:
            raise ValidationFailed("ratio", "positive", f"ratio must be positive, got {self.ratio}")


@dataclass(frozen=True, slots=True)
class DepreciationCurve:
    k: float  # yearly exponential decay, >= 0
    step: float  # one-time drop d at the successor's launch, 0 <= d < 1
    source: str  # "model" | "brand" | "tier-default"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.k) and self.k >= 0):
            raise ValidationFailed("k", "non-negative", f"k must be >= 0, got {self.k}")
        if not (math.isfinite(self.step) and 0 <= self.step < 1):
            raise ValidationFailed("step", "range", f"step must be in [0, 1), got {self.step}")
        if self.source not in SOURCES:
            raise ValidationFailed("source", "unknown-source", f"source must be one of {SOURCES}")


def tier_default(model: DeviceModel) -> DepreciationCurve:
    """The FACTS.md figure for the model's segment, as a curve with no successor step."""
    if model.brand.lower() == "apple":
        k = -math.log(1 - APPLE_YEAR1_LOSS)
    elif model.tier == "foldable":
        k = -math.log(1 - FOLDABLE_LOSS) * 12 / FOLDABLE_MONTHS
    else:
        k = -math.log(1 - ANDROID_YEAR1_LOSS[model.tier])
    return DepreciationCurve(k, 0.0, "tier-default")


def fit(
    points: Sequence[PricePoint], *, min_points: int = MIN_POINTS, source: str = "model"
) -> DepreciationCurve | None:
    """Least-squares k and d from price points, or None when the points cannot support a fit."""
    if len(points) < min_points:
        return None
    ages = [p.age_days for p in points]
    if max(ages) - min(ages) < MIN_SPAN_DAYS:
        return None
    t = [p.age_days / DAYS_PER_YEAR for p in points]
    x = [1.0 if p.after_successor else 0.0 for p in points]
    y = [math.log(p.ratio) for p in points]
    stt = sum(a * a for a in t)
    stx = sum(a * b for a, b in zip(t, x, strict=True))
    sxx = sum(x)
    sty = sum(a * b for a, b in zip(t, y, strict=True))
    sxy = sum(a * b for a, b in zip(x, y, strict=True))
    slope, drop = _solve(stt, stx, sxx, sty, sxy)  # log r = slope t + drop x
    if slope is None or drop is None:
        return None
    return DepreciationCurve(-slope, -math.expm1(drop), source)


def _solve(
    stt: float, stx: float, sxx: float, sty: float, sxy: float
) -> tuple[float | None, float | None]:
    """Normal equations of log r = a t + b x, with a <= 0 and b <= 0 enforced."""
    if stt <= 0:
        return None, None
    if sxx == 0:  # no point after the successor: the drop is not identified
        return min(sty / stt, 0.0), 0.0
    det = stt * sxx - stx * stx
    if det <= 1e-12 * stt * sxx:  # t and x collinear: decay and drop cannot be told apart
        return None, None
    a = (sty * sxx - sxy * stx) / det
    b = (stt * sxy - stx * sty) / det
    if b > 0:  # a price jump at the successor's launch: no drop, refit the decay alone
        a, b = sty / stt, 0.0
    if a > 0:  # value rising with age: no decay, refit the drop alone
        a, b = 0.0, min(sxy / sxx, 0.0)
    return a, b


def curve_for(
    model: DeviceModel,
    *,
    model_points: Sequence[PricePoint],
    brand_points: Sequence[PricePoint],
) -> DepreciationCurve:
    """The model's own fit, else the brand's pooled fit, else the tier default."""
    own = fit(model_points, source="model")
    if own is not None:
        return own
    pooled = fit(brand_points, source="brand")
    if pooled is not None:
        return pooled
    return tier_default(model)


def _to_ratio(value: float) -> Decimal:
    return Decimal(value).quantize(RATIO_STEP, rounding=ROUND_HALF_EVEN)


def ratio_at(curve: DepreciationCurve, *, age_days: int, after_successor: bool) -> Decimal:
    """Value of a mint device of this age over its launch price (6 decimals)."""
    if age_days < 0:
        raise ValidationFailed("age_days", "non-negative", "age_days must be >= 0")
    value = math.exp(-curve.k * age_days / DAYS_PER_YEAR)
    if after_successor:
        value *= 1 - curve.step
    return _to_ratio(value)


def forecast_ratio(
    curve: DepreciationCurve, *, from_age_days: int, to_age_days: int, successor_between: bool
) -> Decimal:
    """value(to) / value(from): the share of today's value left at a later age (<= 1)."""
    if from_age_days < 0 or to_age_days < from_age_days:
        raise ValidationFailed("to_age_days", "order", "need 0 <= from_age_days <= to_age_days")
    value = math.exp(-curve.k * (to_age_days - from_age_days) / DAYS_PER_YEAR)
    if successor_between:
        value *= 1 - curve.step
    return _to_ratio(value)


def price_point(
    *,
    model: DeviceModel,
    storage_gb: int,
    grade: str,
    price: Decimal,
    quoted_on: date,
    successor_release: date | None,
) -> PricePoint:
    """A point for `fit` from one observed price: graded price back to a mint-device ratio."""
    age = (quoted_on - model.release_date).days
    if age < 0:
        raise ValidationFailed("quoted_on", "before-release", f"{model.key} was not out yet")
    launch = model.variant(storage_gb).launch_price
    ratio = price / (launch * grade_multiplier(grade))
    after = successor_release is not None and quoted_on >= successor_release
    return PricePoint(age, ratio, after)
