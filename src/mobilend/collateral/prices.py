"""Used-phone price quotes and their aggregation into one market price (pure).

A `PriceQuote` is one observed price (a trade-in offer, a recycler's bid, a marketplace sale)
for one model, storage and grade on one day. Quotes arrive as CSV (columns ``model_key,
storage_gb, grade, price, quoted_on, source``; errors name ``"row {n}: {column}"`` with n the
file line, header = row 1) or as a JSON list of objects with the same fields (n = position in
the list, from 1).

`aggregate` turns the quotes of ONE model/storage/grade into a `MarketPrice`:

1. Window: keep quotes with as_of - window_days < quoted_on <= as_of (later ones are ignored).
2. Outliers, by the median absolute deviation (MAD): m = median(p), MAD = median(|p - m|),
   scale = 1.4826 x MAD (the normal-consistent sigma). Reject p when |p - m| > k x scale.
   If MAD = 0 (more than half the quotes equal the median) the scale falls back to
   1.2533 x mean(|p - m|) (the mean absolute deviation, normal-consistent), so a lone quote far
   from a crowd of equal ones is still rejected; if that is 0 too, all quotes are equal and
   none is rejected.
3. Price: the median of the kept quotes, rounded to the cent (half-even).
4. Stale: no quote in the window, or the latest kept quote is more than stale_after_days old.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from mobilend.collateral.grading import GRADES
from mobilend.core.errors import ValidationFailed
from mobilend.core.money import CENT, parse_amount, quantize

QUOTE_FIELDS = ("model_key", "storage_gb", "grade", "price", "quoted_on", "source")
MAD_TO_SIGMA = Decimal("1.4826")
MEAN_AD_TO_SIGMA = Decimal("1.2533")


@dataclass(frozen=True, slots=True)
class PriceQuote:
    model_key: str
    storage_gb: int
    grade: str  # one of grading.GRADES
    price: Decimal
    quoted_on: date
    source: str


@dataclass(frozen=True, slots=True)
class MarketPrice:
    price: Decimal | None  # median of the kept quotes, to the cent; None without quotes
    used: int  # quotes kept
    rejected: int  # quotes in the window rejected as outliers
    latest: date | None  # date of the newest kept quote
    stale: bool


# --- parsing ------------------------------------------------------------------------------


def parse_quotes_csv(text: str) -> list[PriceQuote]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in QUOTE_FIELDS if name not in header]
    if missing:
        raise ValidationFailed(
            "header", "missing-column", f"quotes CSV lacks column(s): {', '.join(missing)}"
        )
    quotes = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        record = {
            name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)
        }
        quotes.append(_quote(reader.line_num, record))
    return quotes


def parse_quotes_json(text: str) -> list[PriceQuote]:
    try:
        items = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValidationFailed("quotes", "json", f"quotes are not valid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise ValidationFailed("quotes", "json-list", "quotes JSON must be a list of objects")
    quotes = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValidationFailed(f"row {n}", "json-object", f"row {n} is not an object")
        quotes.append(_quote(n, item))
    return quotes


def _err(n: int, column: str, rule: str, detail: str) -> ValidationFailed:
    return ValidationFailed(f"row {n}: {column}", rule, f"row {n}, {column}: {detail}")


def _text(n: int, record: Mapping[str, object], column: str) -> str:
    value = record.get(column)
    if not isinstance(value, str) or not value.strip():
        raise _err(n, column, "required", "must be a non-empty string")
    return value.strip()


def _quote(n: int, record: Mapping[str, object]) -> PriceQuote:
    storage = record.get("storage_gb")
    if isinstance(storage, str) and storage.isdigit() and storage.isascii():
        storage = int(storage)
    if isinstance(storage, bool) or not isinstance(storage, int) or storage <= 0:
        raise _err(n, "storage_gb", "positive-integer", "must be a positive whole number")
    grade = _text(n, record, "grade")
    if grade not in GRADES:
        raise _err(n, "grade", "unknown-grade", f"must be one of {', '.join(GRADES)}")
    # JSON numbers arrive as int or Decimal (parse_float=Decimal): never as binary floats.
    price = parse_amount(record.get("price"), field=f"row {n}: price")
    try:
        quoted_on = date.fromisoformat(_text(n, record, "quoted_on"))
    except ValueError:
        raise _err(n, "quoted_on", "date", "must be a date YYYY-MM-DD") from None
    return PriceQuote(
        model_key=_text(n, record, "model_key"),
        storage_gb=storage,
        grade=grade,
        price=price,
        quoted_on=quoted_on,
        source=_text(n, record, "source"),
    )


# --- aggregation --------------------------------------------------------------------------


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def outlier_scale(prices: Sequence[Decimal]) -> Decimal:
    """The robust spread used to reject outliers: 1.4826 x MAD, or the mean-AD fallback."""
    centre = median(prices)
    deviations = [abs(price - centre) for price in prices]
    mad = median(deviations)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    return MEAN_AD_TO_SIGMA * sum(deviations, Decimal(0)) / len(deviations)


def aggregate(
    quotes: Sequence[PriceQuote],
    *,
    as_of: date,
    window_days: int = 30,
    stale_after_days: int = 14,
    outlier_k: Decimal = Decimal("3"),
) -> MarketPrice:
    """One market price from the quotes of one model/storage/grade (see the module docstring)."""
    if window_days <= 0 or stale_after_days < 0:
        raise ValidationFailed(
            "window_days", "positive", "window_days must be > 0, stale_after_days >= 0"
        )
    if not outlier_k > 0:
        raise ValidationFailed("outlier_k", "positive", "outlier_k must be positive")
    series = {(q.model_key, q.storage_gb, q.grade) for q in quotes}
    if len(series) > 1:
        raise ValidationFailed(
            "quotes", "mixed-series", "aggregate quotes of one model, storage and grade at a time"
        )
    start = as_of - timedelta(days=window_days)
    window = [q for q in quotes if start < q.quoted_on <= as_of]
    if not window:
        return MarketPrice(None, 0, 0, None, True)
    prices = [q.price for q in window]
    centre = median(prices)
    limit = outlier_k * outlier_scale(prices)
    kept = [q for q in window if abs(q.price - centre) <= limit]
    if not kept:  # only possible with outlier_k below 0.68: every quote is "far"
        return MarketPrice(None, 0, len(window), None, True)
    latest = max(q.quoted_on for q in kept)
    return MarketPrice(
        price=quantize(median([q.price for q in kept]), CENT),
        used=len(kept),
        rejected=len(window) - len(kept),
        latest=latest,
        stale=(as_of - latest).days > stale_after_days,
    )
