"""Day counts, month arithmetic and nominal due dates: hand-checked figures and properties."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.dates import add_months, nominal_due_dates, year_fraction
from mobilend.core.errors import ValidationFailed
from mobilend.loans.terms import DayCount, Frequency, FrequencyUnit

MONTHLY = Frequency(FrequencyUnit.MONTH)


# --- year_fraction ------------------------------------------------------------------------


def test_act_365_is_fixed_even_in_a_leap_year() -> None:
    # 2024 has 366 days; act/365 fixed divides by 365 regardless.
    assert year_fraction(date(2024, 1, 1), date(2025, 1, 1), DayCount.ACT_365) == Decimal(
        366
    ) / Decimal(365)


def test_act_360() -> None:
    # 2024-01-01 -> 2024-07-01: 31+29+31+30+31+30 = 182 days.
    assert year_fraction(date(2024, 1, 1), date(2024, 7, 1), DayCount.ACT_360) == Decimal(
        182
    ) / Decimal(360)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2007, 1, 15), date(2007, 7, 15), 180),  # six whole months
        (date(2024, 1, 31), date(2024, 2, 29), 29),  # D1 31 -> 30; D2 29 kept (no Feb rule)
        (date(2024, 1, 30), date(2024, 3, 31), 60),  # D1 30, so D2 31 -> 30
        (date(2024, 1, 31), date(2024, 3, 31), 60),  # D1 31 -> 30, so D2 31 -> 30
        (date(2024, 1, 15), date(2024, 3, 31), 76),  # D1 15 < 30: D2 31 stays: 60 + 16
        (date(2023, 12, 31), date(2024, 1, 1), 1),  # 360*1 + 30*(-11) + (1 - 30)
    ],
)
def test_thirty_360_bond_basis(start: date, end: date, days: int) -> None:
    assert year_fraction(start, end, DayCount.THIRTY_360) == Decimal(days) / Decimal(360)


def test_act_act_isda_published_example() -> None:
    # ISDA "EMU and market conventions" example: 2003-11-01 -> 2004-05-01 is
    # 61/365 (Nov-Dec 2003) + 121/366 (Jan-Apr 2004) = 0.497724380567...
    got = year_fraction(date(2003, 11, 1), date(2004, 5, 1), DayCount.ACT_ACT)
    assert got == Decimal(61) / 365 + Decimal(121) / 366
    assert abs(got - Decimal("0.49772438056740775")) < Decimal("1e-15")


def test_act_act_whole_years_are_one() -> None:
    assert year_fraction(date(2024, 1, 1), date(2025, 1, 1), DayCount.ACT_ACT) == 1
    assert year_fraction(date(2023, 1, 1), date(2025, 1, 1), DayCount.ACT_ACT) == 2


def test_empty_period_and_reversed_period() -> None:
    d = date(2024, 5, 5)
    for day_count in DayCount:
        assert year_fraction(d, d, day_count) == 0
    with pytest.raises(ValidationFailed) as caught:
        year_fraction(d, d - timedelta(days=1), DayCount.ACT_365)
    assert caught.value.field == "end"


dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


@given(dates, dates, dates)
def test_actual_day_counts_are_additive(a: date, b: date, c: date) -> None:
    a, b, c = sorted((a, b, c))
    for day_count in (DayCount.ACT_365, DayCount.ACT_360, DayCount.ACT_ACT):
        split = year_fraction(a, b, day_count) + year_fraction(b, c, day_count)
        assert abs(split - year_fraction(a, c, day_count)) < Decimal("1e-24")


# --- add_months ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap February
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 2, date(2024, 3, 31)),  # back to the 31st, from the anchor
        (date(2024, 1, 31), 3, date(2024, 4, 30)),
        (date(2024, 4, 30), 1, date(2024, 5, 30)),  # a 30th anchor stays on the 30th
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 11, 15), 3, date(2025, 2, 15)),  # crosses the year
        (date(2024, 3, 31), -1, date(2024, 2, 29)),  # backwards too
        (date(2024, 1, 15), -13, date(2022, 12, 15)),
    ],
)
def test_add_months(anchor: date, months: int, expected: date) -> None:
    assert add_months(anchor, months) == expected


@given(dates, st.integers(min_value=-240, max_value=240))
def test_add_months_keeps_the_anchor_day_clamped(anchor: date, months: int) -> None:
    got = add_months(anchor, months)
    assert (got.year * 12 + got.month) - (anchor.year * 12 + anchor.month) == months
    assert got.day == min(anchor.day, calendar.monthrange(got.year, got.month)[1])


# --- nominal_due_dates --------------------------------------------------------------------


def test_monthly_from_month_end_rolls_from_the_anchor() -> None:
    assert nominal_due_dates(date(2024, 1, 31), MONTHLY, 5, None) == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
        date(2024, 6, 30),
    ]


def test_quarterly_and_every_n_days_and_weeks() -> None:
    assert nominal_due_dates(date(2024, 11, 30), Frequency.parse("quarterly"), 3) == [
        date(2025, 2, 28),
        date(2025, 5, 30),
        date(2025, 8, 30),
    ]
    assert nominal_due_dates(date(2024, 2, 20), Frequency.parse("every-7-days"), 2) == [
        date(2024, 2, 27),
        date(2024, 3, 5),
    ]
    assert nominal_due_dates(date(2024, 12, 20), Frequency.parse("biweekly"), 2) == [
        date(2025, 1, 3),
        date(2025, 1, 17),
    ]


def test_first_due_date_becomes_the_anchor() -> None:
    # Odd first period: 2024-01-10 -> 2024-02-29, then monthly from the 29th.
    assert nominal_due_dates(date(2024, 1, 10), MONTHLY, 3, date(2024, 2, 29)) == [
        date(2024, 2, 29),
        date(2024, 3, 29),
        date(2024, 4, 29),
    ]
    assert nominal_due_dates(
        date(2024, 1, 10), Frequency.parse("weekly"), 2, date(2024, 1, 20)
    ) == [
        date(2024, 1, 20),
        date(2024, 1, 27),
    ]


def test_semimonthly_convention() -> None:
    semimonthly = Frequency.parse("semimonthly")
    # From the 1st: the 16th and the 1st of each month.
    assert nominal_due_dates(date(2024, 1, 1), semimonthly, 4) == [
        date(2024, 1, 16),
        date(2024, 2, 1),
        date(2024, 2, 16),
        date(2024, 3, 1),
    ]
    # From 31 Jan 2024: +15 days, then whole months from the anchor (month-end clamped),
    # each mid-month date 15 days after the preceding whole-month date.
    assert nominal_due_dates(date(2024, 1, 31), semimonthly, 5) == [
        date(2024, 2, 15),
        date(2024, 2, 29),
        date(2024, 3, 15),
        date(2024, 3, 31),
        date(2024, 4, 15),
    ]


def test_nonsense_input_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        nominal_due_dates(date(2024, 1, 1), MONTHLY, 0)
    assert caught.value.field == "periods"
    with pytest.raises(ValidationFailed) as caught:
        nominal_due_dates(date(2024, 1, 1), MONTHLY, 2, date(2024, 1, 1))
    assert caught.value.field == "first_due_date"
    with pytest.raises(ValidationFailed) as caught:
        nominal_due_dates(date(2024, 1, 1), Frequency(FrequencyUnit.MONTH, 0), 2)
    assert caught.value.field == "frequency"


@given(
    dates,
    st.sampled_from(list(FrequencyUnit)),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=60),
)
def test_due_dates_strictly_increase_after_start(
    start: date, unit: FrequencyUnit, count: int, periods: int
) -> None:
    got = nominal_due_dates(start, Frequency(unit, count), periods)
    assert len(got) == periods
    assert all(a < b for a, b in zip([start, *got], got, strict=False))
