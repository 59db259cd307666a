"""Price quotes: CSV/JSON parsing with row errors; aggregation (window, MAD outliers, staleness)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from mobilend.collateral.prices import (
    MarketPrice,
    PriceQuote,
    aggregate,
    parse_quotes_csv,
    parse_quotes_json,
)
from mobilend.core.errors import ValidationFailed

D = Decimal
AS_OF = date(2025, 3, 31)
HEADER = "model_key,storage_gb,grade,price,quoted_on,source"


def q(price: str, day: date = AS_OF, grade: str = "good") -> PriceQuote:
    return PriceQuote("apple-iphone-15", 256, grade, D(price), day, "test")


# --- parsing ------------------------------------------------------------------------------


def test_parse_csv() -> None:
    text = "\n".join(
        [
            HEADER,
            "apple-iphone-15,256,good,4299.50,2025-03-30,aihuishou",
            "",
            "apple-iphone-15,256,good,4300,2025-03-29,zhuanzhuan",
        ]
    )
    assert parse_quotes_csv(text) == [
        PriceQuote("apple-iphone-15", 256, "good", D("4299.50"), date(2025, 3, 30), "aihuishou"),
        PriceQuote("apple-iphone-15", 256, "good", D("4300"), date(2025, 3, 29), "zhuanzhuan"),
    ]


@pytest.mark.parametrize(
    ("row", "field", "rule"),
    [
        ("apple-iphone-15,256,like new,4299,2025-03-30,x", "row 3: grade", "unknown-grade"),
        ("apple-iphone-15,256,good,-10,2025-03-30,x", "row 3: price", "positive"),
        ("apple-iphone-15,256,good,0,2025-03-30,x", "row 3: price", "positive"),
        ("apple-iphone-15,256,good,abc,2025-03-30,x", "row 3: price", "decimal"),
        ("apple-iphone-15,256,good,4299,30/03/2025,x", "row 3: quoted_on", "date"),
        ("apple-iphone-15,256GB,good,4299,2025-03-30,x", "row 3: storage_gb", "positive-integer"),
        (",256,good,4299,2025-03-30,x", "row 3: model_key", "required"),
        ("apple-iphone-15,256,good,4299,2025-03-30,", "row 3: source", "required"),
    ],
)
def test_csv_errors_name_row_and_column(row: str, field: str, rule: str) -> None:
    text = "\n".join([HEADER, "apple-iphone-15,256,good,4299,2025-03-30,ok", row])
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_csv(text)
    assert (exc.value.field, exc.value.rule) == (field, rule)


def test_csv_missing_column() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_csv("model_key,storage_gb,grade,price,quoted_on\n")
    assert (exc.value.field, exc.value.rule) == ("header", "missing-column")


def test_parse_json_keeps_numbers_exact() -> None:
    text = json.dumps(
        [
            {
                "model_key": "apple-iphone-15",
                "storage_gb": 256,
                "grade": "good",
                "price": "4299.50",
                "quoted_on": "2025-03-30",
                "source": "a",
            },
            {
                "model_key": "apple-iphone-15",
                "storage_gb": "256",
                "grade": "good",
                "price": 4300,
                "quoted_on": "2025-03-29",
                "source": "b",
            },
        ]
    ).replace('"4299.50"', "4299.50")  # a JSON number with decimals: read as Decimal, not float
    first, second = parse_quotes_json(text)
    assert first.price == D("4299.50") and isinstance(first.price, Decimal)
    assert second == PriceQuote("apple-iphone-15", 256, "good", D("4300"), date(2025, 3, 29), "b")


def test_json_errors_name_the_position() -> None:
    good = {
        "model_key": "m",
        "storage_gb": 128,
        "grade": "fair",
        "price": "10",
        "quoted_on": "2025-01-01",
        "source": "s",
    }
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_json(json.dumps([good, {**good, "model_key": None}]))
    assert (exc.value.field, exc.value.rule) == ("row 2: model_key", "required")
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_json(json.dumps([{**good, "price": True}]))
    assert (exc.value.field, exc.value.rule) == ("row 1: price", "decimal-string")
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_json(json.dumps([good, "not an object"]))
    assert (exc.value.field, exc.value.rule) == ("row 2", "json-object")
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_json(json.dumps(good))
    assert exc.value.rule == "json-list"
    with pytest.raises(ValidationFailed) as exc:
        parse_quotes_json("[{")
    assert exc.value.rule == "json"


# --- aggregation --------------------------------------------------------------------------


def test_outlier_is_rejected_and_the_median_of_the_rest_is_the_price() -> None:
    # 4000 4100 4200 4300 4400 9000: median (4200 + 4300) / 2 = 4250; deviations
    # 250 150 50 50 150 4750 -> sorted 50 50 150 150 250 4750 -> MAD = 150.
    # Limit = 3 x 1.4826 x 150 = 667.17; 9000 is 4750 away -> rejected, the rest are <= 250.
    # Median of 4000..4400 = 4200.
    days = [date(2025, 3, d) for d in (20, 22, 24, 26, 28, 28)]
    prices = ["4000", "4100", "4200", "4300", "4400", "9000"]
    result = aggregate([q(p, d) for p, d in zip(prices, days, strict=True)], as_of=AS_OF)
    assert result == MarketPrice(D("4200.00"), 5, 1, date(2025, 3, 28), False)


def test_window_excludes_old_and_future_quotes() -> None:
    # Window is (as_of - 30 days, as_of] = (2025-03-01, 2025-03-31].
    quotes = [
        q("1000", date(2025, 3, 1)),  # exactly 30 days old: outside
        q("5000", date(2025, 3, 2)),  # inside
        q("5100", date(2025, 3, 31)),  # as_of itself: inside
        q("100", date(2025, 4, 1)),  # the future: ignored, not counted as rejected
    ]
    # Kept 5000 and 5100: median 5050.
    assert aggregate(quotes, as_of=AS_OF) == MarketPrice(D("5050.00"), 2, 0, AS_OF, False)


def test_stale_feed() -> None:
    # Latest quote 2025-03-10 is 21 days before as_of, more than 14: stale, but still priced.
    result = aggregate([q("4000", date(2025, 3, 9)), q("4100", date(2025, 3, 10))], as_of=AS_OF)
    assert result == MarketPrice(D("4050.00"), 2, 0, date(2025, 3, 10), True)
    # Exactly 14 days old is not yet stale.
    fresh = aggregate([q("4000", AS_OF - timedelta(days=14))], as_of=AS_OF)
    assert fresh.stale is False


def test_no_quotes_in_window_is_stale_and_unpriced() -> None:
    assert aggregate([q("4000", date(2025, 1, 1))], as_of=AS_OF) == MarketPrice(
        None, 0, 0, None, True
    )
    assert aggregate([], as_of=AS_OF) == MarketPrice(None, 0, 0, None, True)


def test_mad_zero_falls_back_to_mean_absolute_deviation() -> None:
    # 5000 x4 and 6000: median 5000, deviations 0 0 0 0 1000 -> MAD 0. Mean AD = 1000 / 5 = 200,
    # scale 1.2533 x 200 = 250.66, limit 3 x 250.66 = 751.98 < 1000: 6000 is rejected.
    result = aggregate([q("5000")] * 4 + [q("6000")], as_of=AS_OF)
    assert result == MarketPrice(D("5000.00"), 4, 1, AS_OF, False)


def test_mad_zero_keeps_small_deviations() -> None:
    # 5000 x3, 5010, 5020: MAD 0; mean AD = (10 + 20) / 5 = 6; limit 3 x 1.2533 x 6 = 22.5594,
    # 20 <= 22.56: nothing rejected. Median 5000.
    quotes = [q("5000")] * 3 + [q("5010"), q("5020")]
    assert aggregate(quotes, as_of=AS_OF) == MarketPrice(D("5000.00"), 5, 0, AS_OF, False)


def test_all_equal_quotes_are_all_kept() -> None:
    assert aggregate([q("3888.88")] * 3, as_of=AS_OF) == MarketPrice(
        D("3888.88"), 3, 0, AS_OF, False
    )


def test_even_median_rounds_half_even_to_the_cent() -> None:
    # (4299.99 + 4300.00) / 2 = 4299.995 -> 4300.00 (the even neighbour of ...99 | ...00).
    assert aggregate([q("4299.99"), q("4300.00")], as_of=AS_OF).price == D("4300.00")
    # (4299.98 + 4299.99) / 2 = 4299.985 -> 4299.98 (8 is even).
    assert aggregate([q("4299.98"), q("4299.99")], as_of=AS_OF).price == D("4299.98")


def test_quotes_of_different_grades_are_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        aggregate([q("4000"), q("3000", grade="fair")], as_of=AS_OF)
    assert (exc.value.field, exc.value.rule) == ("quotes", "mixed-series")
