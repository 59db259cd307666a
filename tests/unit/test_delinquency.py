"""Days past due, overdue amounts, buckets, statuses and roll labels: hand counts and properties.

Day counts are counted on the calendar by hand: from a due date D, the day after is DPD 1.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.servicing.delinquency import (
    DEFAULT_BUCKETS,
    Bucket,
    BucketScheme,
    ComponentAmounts,
    InstallmentDue,
    InstallmentStatus,
    RollDirection,
    bucket_for,
    days_past_due,
    delinquency,
    installment_status,
    roll,
    status_change,
)

D = Decimal
S = InstallmentStatus


def unpaid(due: date, number: int = 1, principal: str = "100.00") -> InstallmentDue:
    return InstallmentDue(number, due, D(principal), D("5.00"))


# --- DPD on the calendar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "today", "expected"),
    [
        # Leap year: due 2024-01-31. On the due date still on time; overdue from the day after.
        (date(2024, 1, 31), date(2024, 1, 30), 0),
        (date(2024, 1, 31), date(2024, 1, 31), 0),
        (date(2024, 1, 31), date(2024, 2, 1), 1),
        (date(2024, 1, 31), date(2024, 2, 29), 29),  # Feb 1..29: 29 days
        (date(2024, 1, 31), date(2024, 3, 1), 30),  # + Mar 1
        # Not a leap year: February has 28 days, so Mar 1 is one day fewer.
        (date(2025, 1, 31), date(2025, 2, 28), 28),
        (date(2025, 1, 31), date(2025, 3, 1), 29),
        (date(2025, 1, 31), date(2025, 3, 3), 31),
        # Across the year end: Jan 31 + Feb 28 + Mar 1 = 60; Mar 2 = 61.
        (date(2024, 12, 31), date(2025, 1, 1), 1),
        (date(2024, 12, 31), date(2025, 3, 1), 60),
        (date(2024, 12, 31), date(2025, 3, 2), 61),
        # 2023-12-15 -> 2024-03-14: 16 (rest of Dec) + 31 + 29 + 14 = 90.
        (date(2023, 12, 15), date(2024, 3, 14), 90),
        (date(2023, 12, 15), date(2024, 3, 15), 91),
        # 2024-01-01 -> 2024-12-26: day 361 of a 366-day year, minus day 1 = 360.
        (date(2024, 1, 1), date(2024, 12, 26), 360),
        (date(2024, 1, 1), date(2024, 12, 27), 361),
    ],
)
def test_dpd_counts_calendar_days_from_the_day_after_due(
    due: date, today: date, expected: int
) -> None:
    assert days_past_due([unpaid(due)], today) == expected


def inst(number: int, due: date, owed: str, paid: str = "0 0 0 0") -> InstallmentDue:
    """owed/paid: "principal interest fee penalty" as four decimal strings."""
    p, i, f, pen = (D(x) for x in owed.split())
    pp, ip, fp, penp = (D(x) for x in paid.split())
    return InstallmentDue(number, due, p, i, f, pen, pp, ip, fp, penp)


def _loan(first_interest_paid: str = "29.99", second_paid: bool = False) -> list[InstallmentDue]:
    second_owed = "310.00 20.00 5.00 0.62"
    return [
        # 1: all paid but (by default) 0.01 of interest.
        inst(1, date(2025, 1, 15), "300.00 30.00 5.00 1.20", f"300 {first_interest_paid} 5 1.20"),
        inst(2, date(2025, 2, 15), second_owed, second_owed if second_paid else "0 0 0 0"),
        inst(3, date(2025, 3, 15), "320.00 10.00 5.00 0"),
    ]


def test_overdue_amounts_by_component_and_count() -> None:
    # On 2025-03-01: #1 (due Jan 15, 0.01 left) and #2 (due Feb 15, nothing paid) are overdue.
    # DPD from Jan 15: 16 (Jan 16..31) + 28 (Feb) + 1 = 45.
    # Overdue: principal 0 + 310.00; interest 0.01 + 20.00; fee 0 + 5.00; penalty 0 + 0.62.
    result = delinquency(_loan(), date(2025, 3, 1))
    assert result.days_past_due == 45
    assert result.oldest_overdue_due_date == date(2025, 1, 15)
    assert result.overdue_installments == 2
    assert result.overdue == ComponentAmounts(D("310.00"), D("20.01"), D("5.00"), D("0.62"))
    assert result.overdue.total == D("335.63")
    assert not result.is_current


def test_an_installment_due_today_is_not_yet_overdue() -> None:
    # 2025-03-15 is #3's due date: still 2 overdue, DPD 45 + 14 = 59.
    on_due = delinquency(_loan(), date(2025, 3, 15))
    assert (on_due.days_past_due, on_due.overdue_installments) == (59, 2)
    assert on_due.overdue.principal == D("310.00")
    # The day after, #3 joins: principal 310 + 320 = 630.00, interest 20.01 + 10 = 30.01.
    after = delinquency(_loan(), date(2025, 3, 16))
    assert (after.days_past_due, after.overdue_installments) == (60, 3)
    assert after.overdue == ComponentAmounts(D("630.00"), D("30.01"), D("10.00"), D("0.62"))


def test_paying_the_oldest_moves_dpd_to_the_next_unpaid() -> None:
    # #1 fully paid: the oldest overdue is #2, due Feb 15: Feb 16..28 is 13, + Mar 1 = 14.
    assert days_past_due(_loan(first_interest_paid="30.00"), date(2025, 3, 1)) == 14


def test_a_paid_later_installment_does_not_cure_an_earlier_one() -> None:
    # #2 paid in full, #1 still owes 0.01: DPD still counts from Jan 15.
    result = delinquency(_loan(second_paid=True), date(2025, 3, 1))
    assert (result.days_past_due, result.overdue_installments) == (45, 1)
    assert result.overdue == ComponentAmounts(interest=D("0.01"))


def test_unpaid_penalty_alone_keeps_an_installment_overdue() -> None:
    item = inst(1, date(2025, 1, 10), "100.00 5.00 0 0.50", "100.00 5.00 0 0")
    assert days_past_due([item], date(2025, 1, 20)) == 10
    assert delinquency([item], date(2025, 1, 20)).overdue == ComponentAmounts(penalty=D("0.50"))


def test_current_loan_and_empty_schedule() -> None:
    assert delinquency([], date(2025, 1, 1)).is_current
    paid = InstallmentDue(1, date(2025, 1, 10), D("1.00"), D("0"), principal_paid=D("1.00"))
    result = delinquency([paid], date(2025, 6, 1))
    assert (result.days_past_due, result.oldest_overdue_due_date) == (0, None)
    assert result.overdue.total == 0


def test_order_of_installments_does_not_matter() -> None:
    assert delinquency(reversed(_loan()), date(2025, 3, 1)) == delinquency(
        _loan(), date(2025, 3, 1)
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"principal_paid": D("100.01")}, "principal_paid", "not-above-due"),
        ({"fee_due": D("-1")}, "fee_due", "non-negative"),
        ({"interest_paid": D("NaN")}, "interest_paid", "non-negative"),
        ({"penalty_due": 0.5}, "penalty_due", "non-negative"),  # a float is refused
        ({"number": 0}, "number", "positive-int"),
    ],
)
def test_installment_validation(kwargs: dict[str, object], field: str, rule: str) -> None:
    args: dict[str, object] = {
        "number": 1,
        "due_date": date(2025, 1, 1),
        "principal_due": D("100.00"),
        "interest_due": D("1.00"),
    }
    with pytest.raises(ValidationFailed) as caught:
        InstallmentDue(**{**args, **kwargs})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_repeated_installment_numbers_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="repeat"):
        delinquency([unpaid(date(2025, 1, 1)), unpaid(date(2025, 2, 1))], date(2025, 3, 1))


# --- status and transitions ------------------------------------------------------------------


def test_status_through_the_due_date() -> None:
    item = unpaid(date(2025, 1, 31))
    assert installment_status(item, date(2025, 1, 30)) is S.PENDING
    assert installment_status(item, date(2025, 1, 31)) is S.DUE
    assert installment_status(item, date(2025, 2, 1)) is S.OVERDUE
    prepaid = inst(1, date(2025, 1, 31), "100.00 5.00 0 0", "100.00 5.00 0 0")
    assert installment_status(prepaid, date(2025, 1, 1)) is S.PAID  # paid before it fell due
    nothing_owed = InstallmentDue(1, date(2025, 1, 31), D(0), D(0))
    assert installment_status(nothing_owed, date(2025, 3, 1)) is S.PAID


@pytest.mark.parametrize(
    ("previous", "current", "event"),
    [
        (S.PENDING, S.DUE, "fell_due"),
        (S.DUE, S.OVERDUE, "became_overdue"),
        (S.PENDING, S.OVERDUE, "became_overdue"),  # a close catching up over missed days
        (S.PENDING, S.PAID, "paid"),
        (S.DUE, S.PAID, "paid"),
        (S.OVERDUE, S.PAID, "paid"),
        (S.PAID, S.OVERDUE, "reopened"),  # payment reversed
        (S.PAID, S.PENDING, "reopened"),
    ],
)
def test_allowed_transitions(previous: S, current: S, event: str) -> None:
    change = status_change(previous, current)
    assert change is not None
    assert (change.previous, change.current, change.event) == (previous, current, event)


@pytest.mark.parametrize(
    ("previous", "current"), [(S.OVERDUE, S.DUE), (S.OVERDUE, S.PENDING), (S.DUE, S.PENDING)]
)
def test_backward_transitions_are_refused(previous: S, current: S) -> None:
    with pytest.raises(ValidationFailed) as caught:
        status_change(previous, current)
    assert caught.value.rule == "transition"


def test_daily_walk_records_fell_due_then_became_overdue() -> None:
    item = unpaid(date(2024, 2, 29))
    day, events = date(2024, 2, 27), []
    previous = installment_status(item, day)
    for _ in range(5):
        day += timedelta(days=1)
        current = installment_status(item, day)
        change = status_change(previous, current)
        if change is not None:
            events.append((day, change.event))
        previous = current
    assert events == [(date(2024, 2, 29), "fell_due"), (date(2024, 3, 1), "became_overdue")]
    assert status_change(S.OVERDUE, S.OVERDUE) is None


# --- buckets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dpd", "name"),
    [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3+"), (10_000, "M3+")],
)
def test_default_buckets(dpd: int, name: str) -> None:
    assert bucket_for(dpd) == name


def test_default_scheme_shape() -> None:
    assert DEFAULT_BUCKETS.buckets == (
        Bucket("M0", 0, 0),
        Bucket("M1", 1, 30),
        Bucket("M2", 31, 60),
        Bucket("M3+", 61, None),
    )


def test_custom_bounds_and_names() -> None:
    monthly = BucketScheme.from_bounds((0, 30, 60, 90, 120, 150, 180))
    assert monthly.names == ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+")
    assert [bucket_for(d, monthly) for d in (90, 91, 180, 181)] == ["M3", "M4", "M6", "M7+"]
    # A product counting 1-29 days as a grace bucket.
    grace = BucketScheme.from_bounds((29, 59), names=("current", "30+", "60+"))
    assert [bucket_for(d, grace) for d in (0, 29, 30, 59, 60)] == [
        "current", "current", "30+", "30+", "60+",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bounds", "names"),
    [((30, 30), None), ((-1,), None), ((60, 30), None), ((True,), None), ((0,), ("a",))],
)
def test_bad_bounds_are_refused(bounds: tuple[int, ...], names: tuple[str, ...] | None) -> None:
    with pytest.raises(ValidationFailed):
        BucketScheme.from_bounds(bounds, names)


@pytest.mark.parametrize(
    "buckets",
    [
        (),
        (Bucket("A", 0, 0), Bucket("B", 2, None)),  # gap at DPD 1
        (Bucket("A", 1, None),),  # does not start at 0
        (Bucket("A", 0, None), Bucket("B", 1, None)),  # open bucket in the middle
        (Bucket("A", 0, 5),),  # last bucket closed
        (Bucket("A", 0, 0), Bucket("A", 1, None)),  # same name
        (Bucket(" ", 0, None),),
    ],
)
def test_bad_schemes_are_refused(buckets: tuple[Bucket, ...]) -> None:
    with pytest.raises(ValidationFailed):
        BucketScheme(buckets)


def test_negative_dpd_has_no_bucket() -> None:
    with pytest.raises(ValidationFailed):
        bucket_for(-1)


# --- roll labels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "direction", "steps"),
    [
        ("M0", "M1", RollDirection.FORWARD, 1),
        ("M1", "M2", RollDirection.FORWARD, 1),
        ("M1", "M3+", RollDirection.FORWARD, 2),
        ("M2", "M2", RollDirection.STAY, 0),
        ("M0", "M0", RollDirection.STAY, 0),
        ("M3+", "M1", RollDirection.BACK, -2),
        ("M2", "M0", RollDirection.CURE, -2),
    ],
)
def test_roll(previous: str, current: str, direction: RollDirection, steps: int) -> None:
    result = roll(previous, current)
    assert (result.direction, result.steps) == (direction, steps)
    assert result.label == f"{previous}->{current}"


def test_roll_with_unknown_bucket() -> None:
    with pytest.raises(ValidationFailed) as caught:
        roll("M1", "M9")
    assert caught.value.rule == "unknown-bucket"


# --- properties ------------------------------------------------------------------------------

due_dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@given(
    st.lists(due_dates, min_size=1, max_size=12),
    due_dates,
    st.integers(min_value=0, max_value=800),
)
def test_dpd_grows_day_for_day_while_nothing_is_paid(
    dues: list[date], first: date, gap: int
) -> None:
    schedule = [unpaid(due, number=i + 1) for i, due in enumerate(dues)]
    later = first + timedelta(days=gap)
    before, after = days_past_due(schedule, first), days_past_due(schedule, later)
    assert before <= after
    if before > 0:  # the same oldest installment: DPD moves with the calendar
        assert after == before + gap


@given(st.lists(st.integers(min_value=0, max_value=400), min_size=0, max_size=8, unique=True))
def test_every_dpd_falls_in_exactly_one_bucket(raw: list[int]) -> None:
    scheme = BucketScheme.from_bounds(sorted(raw))
    for dpd in range(0, 402):
        assert sum(bucket.contains(dpd) for bucket in scheme.buckets) == 1
