"""A SIMULATED used-phone price feed for demos and benchmarks (pure; seeded, reproducible).

No open dataset of used-phone price histories exists (FACTS.md), so this generator draws
quotes around a depreciation curve: the tier default (or a given curve) from the variant's
launch price, times the grade multiplier, with multiplicative noise. Every quote's source
says "simulated": never mistake these figures for a market.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from mobilend.collateral import depreciation, grading
from mobilend.collateral.catalog import DeviceModel
from mobilend.collateral.prices import PriceQuote
from mobilend.core.errors import ValidationFailed
from mobilend.core.money import CENT, quantize


def simulate_quotes(
    model: DeviceModel,
    *,
    storage_gb: int,
    grade: str,
    start: date,
    end: date,
    every_days: int = 7,
    per_day: int = 3,
    noise: float = 0.05,
    seed: int = 0,
    successor_on: date | None = None,
    curve: depreciation.DepreciationCurve | None = None,
) -> Iterator[PriceQuote]:
    """Quotes from `start` to `end` every `every_days` days, `per_day` sources each day."""
    if end < start or every_days < 1 or per_day < 1:
        raise ValidationFailed("end", "order", "need start <= end, every_days >= 1, per_day >= 1")
    launch = model.variant(storage_gb).launch_price * grading.grade_multiplier(grade)
    curve = curve or depreciation.tier_default(model)
    rng = random.Random(f"{model.key}/{storage_gb}/{grade}/{seed}")
    day = max(start, model.release_date)
    while day <= end:
        ratio = depreciation.ratio_at(
            curve,
            age_days=(day - model.release_date).days,
            after_successor=successor_on is not None and day >= successor_on,
        )
        for n in range(per_day):
            wobble = Decimal(str(round(1 + rng.gauss(0, noise), 4)))
            price = quantize(launch * ratio * max(wobble, Decimal("0.5")), CENT)
            yield PriceQuote(model.key, storage_gb, grade, price, day, f"simulated-{n + 1}")
        day += timedelta(days=every_days)
