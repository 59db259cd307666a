"""Business-day calendars. CN dates are those of the State Council holiday notices
(国务院办公厅关于2024年部分节假日安排的通知 国办发明电〔2023〕7号 and the 2025 notice
国办发明电〔2024〕12号), including the adjusted working days (调休)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.calendars import adjust, check_calendar, is_business_day
from mobilend.core.errors import ValidationFailed
from mobilend.loans.terms import BusinessDayRule


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# 2024: Spring Festival 2/10-2/17 off, 2/4 (Sun) and 2/18 (Sun) worked; Qingming 4/4-4/6 off,
# 4/7 (Sun) worked; Labour Day 5/1-5/5 off, 4/28 (Sun) and 5/11 (Sat) worked; Dragon Boat 6/10;
# Mid-Autumn 9/15-9/17 off, 9/14 (Sat) worked; National Day 10/1-10/7 off, 9/29 (Sun) and
# 10/12 (Sat) worked.
CN_2024_OFF = [
    date(2024, 1, 1),
    *days(date(2024, 2, 10), date(2024, 2, 17)),
    *days(date(2024, 4, 4), date(2024, 4, 6)),
    *days(date(2024, 5, 1), date(2024, 5, 5)),
    date(2024, 6, 10),
    *days(date(2024, 9, 15), date(2024, 9, 17)),
    *days(date(2024, 10, 1), date(2024, 10, 7)),
]
CN_2024_WEEKEND_WORKDAYS = [
    date(2024, 2, 4),
    date(2024, 2, 18),
    date(2024, 4, 7),
    date(2024, 4, 28),
    date(2024, 5, 11),
    date(2024, 9, 14),
    date(2024, 9, 29),
    date(2024, 10, 12),
]
# 2025: New Year 1/1; Spring Festival 1/28-2/4 off, 1/26 (Sun) and 2/8 (Sat) worked; Qingming
# 4/4-4/6; Labour Day 5/1-5/5 off, 4/27 (Sun) worked; Dragon Boat 5/31-6/2; National Day and
# Mid-Autumn 10/1-10/8 off, 9/28 (Sun) and 10/11 (Sat) worked.
CN_2025_OFF = [
    date(2025, 1, 1),
    *days(date(2025, 1, 28), date(2025, 2, 4)),
    *days(date(2025, 4, 4), date(2025, 4, 6)),
    *days(date(2025, 5, 1), date(2025, 5, 5)),
    *days(date(2025, 5, 31), date(2025, 6, 2)),
    *days(date(2025, 10, 1), date(2025, 10, 8)),
]
CN_2025_WEEKEND_WORKDAYS = [
    date(2025, 1, 26),
    date(2025, 2, 8),
    date(2025, 4, 27),
    date(2025, 9, 28),
    date(2025, 10, 11),
]


@pytest.mark.parametrize("d", CN_2024_OFF + CN_2025_OFF)
def test_cn_public_holidays_are_not_business_days(d: date) -> None:
    assert not is_business_day(d, "CN")


@pytest.mark.parametrize("d", CN_2024_WEEKEND_WORKDAYS + CN_2025_WEEKEND_WORKDAYS)
def test_cn_adjusted_weekend_workdays_are_business_days(d: date) -> None:
    assert d.weekday() >= 5  # really a Saturday or Sunday
    assert is_business_day(d, "CN")


@pytest.mark.parametrize("year", [2024, 2025])
def test_cn_year_matches_the_notice_exactly(year: int) -> None:
    off = set(CN_2024_OFF if year == 2024 else CN_2025_OFF)
    worked = set(CN_2024_WEEKEND_WORKDAYS if year == 2024 else CN_2025_WEEKEND_WORKDAYS)
    for d in days(date(year, 1, 1), date(year, 12, 31)):
        expected = d not in off and (d.weekday() < 5 or d in worked)
        assert is_business_day(d, "CN") is expected, d


def test_ordinary_days_and_case_insensitive_codes() -> None:
    assert is_business_day(date(2025, 10, 9), "CN")  # Thursday after National Day
    assert not is_business_day(date(2025, 10, 12), "cn")  # ordinary Sunday
    assert is_business_day(date(2024, 2, 9), " CN ")  # 除夕 2024 (Friday) was worked


def test_weekends_only_calendar() -> None:
    assert is_business_day(date(2025, 10, 1), "NONE")  # a Wednesday
    assert not is_business_day(date(2025, 1, 26), "NONE")  # a Sunday
    assert not is_business_day(date(2025, 1, 25), "none")  # a Saturday


def test_other_countries() -> None:
    assert not is_business_day(date(2025, 7, 4), "US")  # Independence Day, a Friday
    assert not is_business_day(date(2025, 11, 27), "US")  # Thanksgiving
    assert is_business_day(date(2025, 11, 28), "US")
    assert not is_business_day(date(2025, 12, 26), "GB")  # Boxing Day
    assert is_business_day(date(2025, 4, 1), "CN")  # an ordinary Tuesday


def test_unknown_calendar() -> None:
    for code in ("XX", "CN-XX", ""):
        with pytest.raises(ValidationFailed) as caught:
            is_business_day(date(2025, 1, 2), code)
        assert (caught.value.field, caught.value.rule) == ("calendar", "known-calendar")
    with pytest.raises(ValidationFailed):
        check_calendar("ZZ")
    check_calendar("cn")


@pytest.mark.parametrize(
    ("d", "rule", "expected"),
    [
        (date(2025, 10, 1), BusinessDayRule.NEXT, date(2025, 10, 9)),
        (date(2025, 10, 1), BusinessDayRule.PREVIOUS, date(2025, 9, 30)),
        (date(2025, 10, 1), BusinessDayRule.NONE, date(2025, 10, 1)),
        (date(2025, 10, 10), BusinessDayRule.NEXT, date(2025, 10, 10)),  # already a workday
        (date(2025, 1, 25), BusinessDayRule.NEXT, date(2025, 1, 26)),  # Sat -> 调休 Sunday
        (date(2025, 2, 1), BusinessDayRule.NEXT, date(2025, 2, 5)),
        (date(2025, 2, 1), BusinessDayRule.PREVIOUS, date(2025, 1, 27)),
        (date(2024, 2, 10), BusinessDayRule.NEXT, date(2024, 2, 18)),  # a working Sunday
        (date(2024, 2, 10), BusinessDayRule.PREVIOUS, date(2024, 2, 9)),
    ],
)
def test_adjust_cn(d: date, rule: BusinessDayRule, expected: date) -> None:
    assert adjust(d, rule, "CN") == expected


def test_adjust_weekends_only() -> None:
    assert adjust(date(2025, 10, 4), BusinessDayRule.NEXT, "NONE") == date(2025, 10, 6)
    assert adjust(date(2025, 10, 4), BusinessDayRule.PREVIOUS, "NONE") == date(2025, 10, 3)


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31)),
    st.sampled_from([BusinessDayRule.NEXT, BusinessDayRule.PREVIOUS]),
    st.sampled_from(["CN", "NONE", "US"]),
)
def test_adjust_lands_on_the_nearest_business_day(
    d: date, rule: BusinessDayRule, code: str
) -> None:
    got = adjust(d, rule, code)
    assert is_business_day(got, code)
    low, high = sorted((d, got))
    assert (got >= d) if rule is BusinessDayRule.NEXT else (got <= d)
    between = days(low, high)[1:-1] + ([d] if got != d else [])
    assert not any(is_business_day(x, code) for x in between)
