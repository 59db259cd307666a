"""Daily interest and penalty accrual: hand calculations and Hypothesis properties."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.loans.accrual import (
    daily_accrual,
    interest_accrued_to,
    penalty_between,
    penalty_for_day,
)
from mobilend.loans.terms import DayCount

D = Decimal
JAN1, JAN31 = date(2025, 1, 1), date(2025, 1, 31)  # a 30-day period


# --- scheduled interest ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 12, 20), "0"),  # before the period: nothing
        (JAN1, "0"),  # the start day accrues nothing
        (date(2025, 1, 2), "1.66"),  # 50 * 1/30 = 1.666... -> 1.66
        (date(2025, 1, 3), "3.33"),  # 50 * 2/30 = 3.333... -> 3.33
        (date(2025, 1, 4), "5.00"),  # 50 * 3/30 = 5
        (date(2025, 1, 30), "48.33"),  # 50 * 29/30 = 48.333... -> 48.33
        (JAN31, "50.00"),  # period end: all of it
        (date(2025, 3, 1), "50.00"),  # after the end: still all of it
    ],
)
def test_interest_accrued_to_truncates_to_the_cent(day: date, expected: str) -> None:
    assert interest_accrued_to(D("50.00"), JAN1, JAN31, day) == D(expected)


def test_daily_postings_carry_the_sub_cent_remainder() -> None:
    # 1.66 - 0 = 1.66; 3.33 - 1.66 = 1.67; 5.00 - 3.33 = 1.67; 6.66 - 5.00 = 1.66
    posts = [daily_accrual(D("50.00"), JAN1, JAN31, JAN1 + timedelta(days=k)) for k in range(5)]
    assert posts == [D("0"), D("1.66"), D("1.67"), D("1.67"), D("1.66")]
    # Last day: 50.00 - 48.33 = 1.67; after the end nothing more.
    assert daily_accrual(D("50.00"), JAN1, JAN31, JAN31) == D("1.67")
    assert daily_accrual(D("50.00"), JAN1, JAN31, date(2025, 2, 1)) == 0


def test_uneven_period_of_28_days() -> None:
    # 47.45 over 2025-02-15 .. 2025-03-15 (28 days): 47.45/28 = 1.6946... -> 1.69;
    # 14 days 23.725 -> 23.72; 27 days 45.7553... -> 45.75; last day posts 47.45 - 45.75 = 1.70.
    start, end = date(2025, 2, 15), date(2025, 3, 15)
    assert interest_accrued_to(D("47.45"), start, end, date(2025, 2, 16)) == D("1.69")
    assert interest_accrued_to(D("47.45"), start, end, date(2025, 3, 1)) == D("23.72")
    assert interest_accrued_to(D("47.45"), start, end, date(2025, 3, 14)) == D("45.75")
    assert daily_accrual(D("47.45"), start, end, end) == D("1.70")


def test_bad_period_or_interest_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        interest_accrued_to(D("1.00"), JAN31, JAN1, JAN1)  # ends before it starts
    assert caught.value.field == "period_end"
    with pytest.raises(ValidationFailed) as caught:
        interest_accrued_to(D("-1.00"), JAN1, JAN31, JAN1)
    assert caught.value.field == "scheduled_interest"


# --- penalty interest 罚息 -------------------------------------------------------------------


def test_penalty_act_365_day_by_day() -> None:
    # 1000 * 18% / 365 = 36/73 = 0.49315068493150684931|5068... kept to 1e-20, rounded up:
    # 0.49315068493150684932.
    # day 1: 0 + 0.4931... -> post 0.49, carry 0.00315068493150684932
    # day 2: 0.00315... + 0.49315... = 0.49630136986301369864 -> 0.49, carry 0.00630...864
    # day 3: 0.49945205479452054796 -> 0.49, carry 0.00945205479452054796
    # day 4: 0.50260273972602739728 -> 0.50, carry 0.00260273972602739728
    expected = [
        ("0.49", "0.00315068493150684932"),
        ("0.49", "0.00630136986301369864"),
        ("0.49", "0.00945205479452054796"),
        ("0.50", "0.00260273972602739728"),
    ]
    carry = D(0)
    for k, (post, new_carry) in enumerate(expected):
        day = date(2025, 3, 1) + timedelta(days=k)
        posted, carry = penalty_for_day(D(1000), D("0.18"), day, DayCount.ACT_365, carry)
        assert (posted, carry) == (D(post), D(new_carry))


def test_penalty_reaches_a_whole_cent_on_the_exact_day() -> None:
    # 1000 * 18% * 73 / 365 = 36 exactly: 73 days post 36.00, not 35.99.
    posted, carry = penalty_between(
        D(1000), D("0.18"), date(2025, 3, 1), date(2025, 5, 13), DayCount.ACT_365, D(0)
    )
    assert posted == D("36.00")
    assert carry < D("1e-18")


@pytest.mark.parametrize("day_count", [DayCount.ACT_360, DayCount.THIRTY_360])
def test_penalty_360_basis(day_count: DayCount) -> None:
    # 1000 * 18% / 360 = 0.50 exactly, every day, with no carry.
    assert penalty_for_day(D(1000), D("0.18"), JAN1, day_count, D(0)) == (D("0.50"), D(0))
    # 1 January to 31 January inclusive is 31 days on either basis: 31 * 0.50 = 15.50.
    assert penalty_between(D(1000), D("0.18"), JAN1, date(2025, 2, 1), day_count, D(0)) == (
        D("15.50"),
        D(0),
    )


def test_penalty_act_act_uses_the_days_calendar_year() -> None:
    # 2024 is a leap year: 180/366 = 0.49180327868852459016|39... -> ...017 (rounded up).
    leap = penalty_for_day(D(1000), D("0.18"), date(2024, 6, 1), DayCount.ACT_ACT, D(0))
    assert leap == (D("0.49"), D("0.00180327868852459017"))
    # Across the year end: 2024-12-31 at /366 plus 2025-01-01 at /365
    # = 0.49180327868852459017 + 0.49315068493150684932 = 0.98495396362003143949.
    both = penalty_between(
        D(1000), D("0.18"), date(2024, 12, 31), date(2025, 1, 2), DayCount.ACT_ACT, D(0)
    )
    assert both == (D("0.98"), D("0.00495396362003143949"))


def test_penalty_between_empty_span_keeps_the_carry() -> None:
    carry = D("0.004")
    assert penalty_between(D(1000), D("0.18"), JAN1, JAN1, DayCount.ACT_365, carry) == (D(0), carry)


@pytest.mark.parametrize(
    ("principal", "rate", "carry", "field"),
    [
        (D("-1"), D("0.18"), D(0), "overdue_principal"),
        (D(1000), D("-0.01"), D(0), "penalty_annual_rate"),
        (D(1000), D("0.18"), D("0.01"), "carry"),
        (D(1000), D("0.18"), D("-0.001"), "carry"),
    ],
)
def test_penalty_rejects_bad_inputs(
    principal: Decimal, rate: Decimal, carry: Decimal, field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        penalty_for_day(principal, rate, JAN1, DayCount.ACT_365, carry)
    assert caught.value.field == field
    with pytest.raises(ValidationFailed):
        penalty_between(principal, rate, JAN1, JAN31, DayCount.ACT_365, carry)


def test_penalty_between_rejects_end_before_start() -> None:
    with pytest.raises(ValidationFailed) as caught:
        penalty_between(D(1000), D("0.18"), JAN31, JAN1, DayCount.ACT_365, D(0))
    assert caught.value.field == "end"


# --- properties ------------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
cents = st.integers(0, 10_000_000).map(lambda n: Decimal(n).scaleb(-2))
rates = st.integers(0, 500_000).map(lambda n: Decimal(n).scaleb(-6))  # 0 .. 50%, 6 decimals
carries = st.integers(0, 10**20 - 1).map(lambda n: Decimal(n).scaleb(-22))  # [0, 0.01)
day_counts = st.sampled_from(DayCount)


@given(cents, days, st.integers(1, 400), st.integers(0, 30))
def test_daily_accruals_sum_to_the_scheduled_interest(
    interest: Decimal, start: date, length: int, margin: int
) -> None:
    end = start + timedelta(days=length)
    span = range(-margin, length + margin + 1)  # some days before and after the period too
    posts = [daily_accrual(interest, start, end, start + timedelta(days=k)) for k in span]
    assert sum(posts) == interest
    assert all(p >= 0 and p == p.quantize(D("0.01")) for p in posts)


@given(cents, rates, days, st.integers(0, 800), day_counts, carries)
def test_carry_stays_below_a_cent_and_posts_are_whole_cents(
    principal: Decimal, rate: Decimal, start: date, n: int, day_count: DayCount, carry: Decimal
) -> None:
    for k in range(min(n, 60)):
        posted, carry = penalty_for_day(
            principal, rate, start + timedelta(days=k), day_count, carry
        )
        assert 0 <= carry < D("0.01")
        assert posted >= 0 and posted == posted.quantize(D("0.01"))


def year_days(day: date, day_count: DayCount) -> int:
    """Independent of the module: the day-count denominators from the brief."""
    if day_count is DayCount.ACT_ACT:
        return 366 if calendar.isleap(day.year) else 365
    return 365 if day_count is DayCount.ACT_365 else 360


@given(cents, rates, days, st.integers(0, 800), day_counts)
def test_total_posted_is_the_floor_of_the_exact_total(
    principal: Decimal, rate: Decimal, start: date, n: int, day_count: DayCount
) -> None:
    exact = sum(
        (
            Fraction(principal) * Fraction(rate) / year_days(start + timedelta(days=k), day_count)
            for k in range(n)
        ),
        Fraction(0),
    )
    floor_cents = Decimal(int(exact * 100)).scaleb(-2)
    end = start + timedelta(days=n)
    posted, _ = penalty_between(principal, rate, start, end, day_count, D(0))
    assert posted == floor_cents


@given(cents, rates, days, st.integers(0, 800), day_counts, carries)
def test_penalty_between_equals_day_by_day(
    principal: Decimal, rate: Decimal, start: date, n: int, day_count: DayCount, carry: Decimal
) -> None:
    end = start + timedelta(days=n)
    total, day_carry = D(0), carry
    for k in range(n):
        posted, day_carry = penalty_for_day(
            principal, rate, start + timedelta(days=k), day_count, day_carry
        )
        total += posted
    assert penalty_between(principal, rate, start, end, day_count, carry) == (total, day_carry)


def test_a_period_cut_on_its_first_day_accrues_all_or_nothing() -> None:
    # A partial prepayment on a due date cuts the current period to zero days: its (possibly
    # zero) interest is all recognised from that day on, none before it.
    day = date(2025, 4, 1)
    assert interest_accrued_to(Decimal("12.34"), day, day, day) == Decimal("12.34")
    assert interest_accrued_to(Decimal("12.34"), day, day, date(2025, 4, 9)) == Decimal("12.34")
    assert interest_accrued_to(Decimal("12.34"), day, day, date(2025, 3, 31)) == 0
    with pytest.raises(ValidationFailed) as err:
        interest_accrued_to(Decimal("1"), day, date(2025, 3, 31), day)
    assert err.value.field == "period_end"
