"""The device-lock policy: a decision table with dates worked out by hand, and idempotence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.collateral.lockpolicy import (
    LOAN_STATUSES,
    MESSAGE_TEMPLATES,
    PLEDGE_STATUSES,
    DeviceLoanState,
    LockPolicy,
    decide,
    offline_lock_at,
    render_message,
)
from mobilend.core.errors import ValidationFailed

POLICY = LockPolicy()  # reminders 3 and 1 days before and on the due date; lock after 4 days
DUE = date(2026, 3, 10)
NEXT = date(2026, 4, 10)


def state(**overrides: Any) -> DeviceLoanState:
    args: dict[str, Any] = {
        "loan_status": "active",
        "next_due_date": DUE,
        "oldest_unpaid_due_date": None,
        "device_state": "unlocked",
        "pledge_status": "active",
    }
    args.update(overrides)
    return DeviceLoanState(**args)


OVERDUE = {"next_due_date": NEXT, "oldest_unpaid_due_date": DUE}

# (today, state overrides, action, reason, message key, days past due, target state)
TABLE: list[tuple[date, dict[str, Any], str | None, str, str | None, int, str]] = [
    # Installment due 2026-03-10. Reminders 3 and 1 days before (03-07, 03-09) and on the day.
    (date(2026, 3, 6), {}, None, "nothing-to-do", None, 0, "unlocked"),
    (date(2026, 3, 7), {}, "reminder", "reminder-before-due", "reminder.before_due", 0, "unlocked"),
    (date(2026, 3, 8), {}, None, "nothing-to-do", None, 0, "unlocked"),
    (date(2026, 3, 9), {}, "reminder", "reminder-before-due", "reminder.before_due", 0, "unlocked"),
    (date(2026, 3, 10), {}, "reminder", "reminder-due-today", "reminder.due_today", 0, "unlocked"),
    # Not paid: 03-11 is 1 day past due ... 03-14 is 4 (= grace, no lock), 03-15 is 5: lock.
    (date(2026, 3, 11), OVERDUE, None, "overdue-within-grace", None, 1, "unlocked"),
    (date(2026, 3, 14), OVERDUE, None, "overdue-within-grace", None, 4, "unlocked"),
    (date(2026, 3, 15), OVERDUE, "lock", "overdue-past-grace", "lock.overdue", 5, "locked"),
    (date(2026, 4, 30), OVERDUE, "lock", "overdue-past-grace", "lock.overdue", 51, "locked"),
    # Locked and still overdue: stays locked.
    (
        date(2026, 3, 15),
        {**OVERDUE, "device_state": "locked"},
        None,
        "overdue-stays-locked",
        None,
        5,
        "locked",
    ),
    # Paid up on 03-16: unlock at once; then nothing (04-10 is 25 days away).
    (
        date(2026, 3, 16),
        {"next_due_date": NEXT, "device_state": "locked"},
        "unlock",
        "loan-current",
        "unlock.current",
        0,
        "unlocked",
    ),
    (date(2026, 3, 16), {"next_due_date": NEXT}, None, "nothing-to-do", None, 0, "unlocked"),
    # Locked, paid the oldest arrears, but the 04-10 installment is 2 days late on 04-12:
    # not current, so it stays locked (unlock needs nothing overdue).
    (
        date(2026, 4, 12),
        {
            "next_due_date": date(2026, 5, 10),
            "oldest_unpaid_due_date": NEXT,
            "device_state": "locked",
        },
        None,
        "overdue-within-grace-stays-locked",
        None,
        2,
        "locked",
    ),
    # Locked and current on a reminder day: unlock wins, the reminder waits.
    (
        date(2026, 3, 9),
        {"device_state": "locked"},
        "unlock",
        "loan-current",
        "unlock.current",
        0,
        "unlocked",
    ),
    # Overdue within the grace and a reminder day for the next installment: the reminder goes.
    (
        date(2026, 3, 12),
        {"next_due_date": date(2026, 3, 13), "oldest_unpaid_due_date": date(2026, 3, 10)},
        "reminder",
        "reminder-before-due",
        "reminder.before_due",
        2,
        "unlocked",
    ),
    # Payoff: release, locked or not; pledge released on an active loan: release too.
    (
        date(2026, 3, 20),
        {"loan_status": "closed", "next_due_date": None},
        "release",
        "loan-closed",
        "release.loan_closed",
        0,
        "released",
    ),
    (
        date(2026, 3, 20),
        {"loan_status": "closed", "next_due_date": None, "device_state": "locked"},
        "release",
        "loan-closed",
        "release.loan_closed",
        0,
        "released",
    ),
    (
        date(2026, 3, 20),
        {"pledge_status": "released"},
        "release",
        "pledge-released",
        "release.pledge_released",
        0,
        "released",
    ),
    (
        date(2026, 3, 20),
        {"loan_status": "closed", "device_state": "released", "pledge_status": "released"},
        None,
        "device-released",
        None,
        0,
        "released",
    ),
    # Forfeited: the lender's phone now. Lock it; never release it, even on a closed loan.
    (
        date(2026, 6, 1),
        {**OVERDUE, "pledge_status": "forfeited", "loan_status": "defaulted"},
        "lock",
        "pledge-forfeited",
        "lock.forfeited",
        83,
        "locked",
    ),
    (
        date(2026, 6, 1),
        {"loan_status": "closed", "pledge_status": "forfeited", "device_state": "locked"},
        None,
        "forfeited-stays-locked",
        None,
        0,
        "locked",
    ),
    (
        date(2026, 6, 1),
        {"loan_status": "closed", "pledge_status": "forfeited"},
        "lock",
        "pledge-forfeited",
        "lock.forfeited",
        0,
        "locked",
    ),
    # Written off but still unpaid: the overdue rule still applies (03-10 to 05-09 is 60 days).
    (
        date(2026, 5, 9),
        {**OVERDUE, "loan_status": "written_off"},
        "lock",
        "overdue-past-grace",
        "lock.overdue",
        60,
        "locked",
    ),
    # A released device gets nothing, even when the loan is overdue.
    (
        date(2026, 3, 20),
        {**OVERDUE, "device_state": "released"},
        None,
        "device-released",
        None,
        10,
        "released",
    ),
]


@pytest.mark.parametrize(("today", "overrides", "action", "reason", "key", "dpd", "target"), TABLE)
def test_decision_table(
    today: date,
    overrides: dict[str, Any],
    action: str | None,
    reason: str,
    key: str | None,
    dpd: int,
    target: str,
) -> None:
    decision = decide(POLICY, state(**overrides), today=today)
    assert (decision.action, decision.reason, decision.message_key) == (action, reason, key)
    assert (decision.days_past_due, decision.target_state) == (dpd, target)
    assert decision.extend_offline_deadline is (target == "unlocked")


def test_idempotent_after_each_action_took_effect() -> None:
    locked = decide(POLICY, state(**OVERDUE), today=date(2026, 3, 15))
    assert locked.action == "lock"
    after = decide(POLICY, state(**OVERDUE, device_state="locked"), today=date(2026, 3, 15))
    assert after.action is None
    reminded = state(last_reminder_date=date(2026, 3, 9))
    again = decide(POLICY, reminded, today=date(2026, 3, 9))
    assert (again.action, again.reason) == (None, "already-reminded-today")
    # The reminder recorded yesterday does not stop today's due-date reminder.
    assert decide(POLICY, reminded, today=date(2026, 3, 10)).action == "reminder"


def test_a_pending_command_is_not_sent_twice() -> None:
    pending = state(**OVERDUE, pending_action="lock")
    decision = decide(POLICY, pending, today=date(2026, 3, 15))
    assert (decision.action, decision.reason, decision.target_state) == (
        None,
        "action-pending",
        "locked",
    )
    # A pending reminder does not hold back a lock.
    other = state(**OVERDUE, pending_action="reminder")
    assert decide(POLICY, other, today=date(2026, 3, 15)).action == "lock"


def test_policy_settings_change_the_days() -> None:
    strict = LockPolicy(reminder_days_before=(7,), remind_on_due=False, lock_after_grace_days=0)
    assert decide(strict, state(), today=date(2026, 3, 3)).action == "reminder"  # 10 - 7 = 3
    assert decide(strict, state(), today=date(2026, 3, 9)).action is None
    assert decide(strict, state(), today=date(2026, 3, 10)).action is None
    assert decide(strict, state(**OVERDUE), today=date(2026, 3, 11)).action == "lock"
    assert decide(POLICY, state(next_due_date=None), today=date(2026, 3, 10)).action is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"offline_lock_days": 2}, "offline_lock_days"),
        ({"offline_lock_days": 201}, "offline_lock_days"),
        ({"reminder_days_before": (0,)}, "reminder_days_before"),
        ({"reminder_days_before": (3, 3)}, "reminder_days_before"),
        ({"reminder_days_before": [3, 1]}, "reminder_days_before"),
        ({"lock_after_grace_days": -1}, "lock_after_grace_days"),
        ({"lock_after_grace_days": True}, "lock_after_grace_days"),
        ({"command_ttl_hours": 0}, "command_ttl_hours"),
        ({"remind_on_due": "yes"}, "remind_on_due"),
    ],
)
def test_bad_policies(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        LockPolicy(**kwargs)
    assert info.value.field == field


def test_knox_guard_offline_bounds_are_allowed() -> None:
    assert LockPolicy(offline_lock_days=3).offline_lock_days == 3
    assert LockPolicy(offline_lock_days=200).offline_lock_days == 200
    assert LockPolicy().command_ttl == timedelta(hours=72)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"loan_status": "paid"}, "loan_status"),
        ({"device_state": "bricked"}, "device_state"),
        ({"pledge_status": "sold"}, "pledge_status"),
        ({"pending_action": "set_offline_deadline"}, "pending_action"),
    ],
)
def test_bad_states(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        state(**overrides)
    assert info.value.field == field


def test_overdue_date_after_today_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        decide(POLICY, state(oldest_unpaid_due_date=DUE), today=date(2026, 3, 9))
    assert info.value.field == "oldest_unpaid_due_date"


def test_offline_lock_at() -> None:
    checked_in = datetime(2026, 3, 10, 8, 0, 0, tzinfo=UTC)
    assert offline_lock_at(checked_in, POLICY) == datetime(2026, 3, 17, 8, 0, 0, tzinfo=UTC)
    shanghai = datetime(2026, 3, 10, 16, 30, 0, 400_000, tzinfo=timezone(timedelta(hours=8)))
    assert offline_lock_at(shanghai, LockPolicy(offline_lock_days=3)) == datetime(
        2026, 3, 13, 8, 30, 0, tzinfo=UTC
    )
    with pytest.raises(ValidationFailed):
        offline_lock_at(datetime(2026, 3, 10, 8, 0), POLICY)


def test_message_templates_fit_the_phone() -> None:
    values = {
        "lender": "Mobilend Finance Kenya",
        "due_date": "2026-03-10",
        "days_past_due": 120,
        "support_phone": "+254 700 000 000",
    }
    lock = render_message("lock.overdue", values)
    assert lock.startswith("This phone is locked because a loan payment due on 2026-03-10 is 120")
    for key in MESSAGE_TEMPLATES:
        assert len(render_message(key, values)) <= (350 if key.startswith("lock.") else 200)
    with pytest.raises(ValidationFailed):
        render_message("lock.unknown", values)
    with pytest.raises(ValidationFailed):
        render_message("lock.overdue", {"lender": "X"})
    with pytest.raises(ValidationFailed):
        render_message("reminder.due_today", {"lender": "L" * 200})


# -- properties --------------------------------------------------------------------------

DAY0 = date(2026, 1, 1)
days = st.integers(min_value=0, max_value=120)


@st.composite
def situations(draw: st.DrawFn) -> tuple[LockPolicy, DeviceLoanState, date]:
    policy = LockPolicy(
        reminder_days_before=tuple(draw(st.lists(st.integers(1, 10), unique=True, max_size=3))),
        remind_on_due=draw(st.booleans()),
        lock_after_grace_days=draw(st.integers(0, 10)),
    )
    today = DAY0 + timedelta(days=draw(days))
    overdue = draw(st.none() | st.integers(0, 60))
    ahead = draw(st.none() | st.integers(0, 40))
    loan_state = DeviceLoanState(
        loan_status=draw(st.sampled_from(LOAN_STATUSES)),
        next_due_date=None if ahead is None else today + timedelta(days=ahead),
        oldest_unpaid_due_date=None if overdue is None else today - timedelta(days=overdue),
        device_state=draw(st.sampled_from(("unlocked", "locked", "released"))),
        pledge_status=draw(st.sampled_from(PLEDGE_STATUSES)),
    )
    return policy, loan_state, today


EFFECT = {"lock": "locked", "unlock": "unlocked", "release": "released"}


@given(situations())
def test_deciding_again_after_the_effect_gives_nothing(
    case: tuple[LockPolicy, DeviceLoanState, date],
) -> None:
    policy, loan_state, today = case
    first = decide(policy, loan_state, today=today)
    assert first == decide(policy, loan_state, today=today)  # deterministic
    assert first.message_key is None or first.message_key in MESSAGE_TEMPLATES
    if first.action is None:
        return
    if first.action == "reminder":
        after = replace(loan_state, last_reminder_date=today)
    else:
        after = replace(loan_state, device_state=EFFECT[first.action])
    second = decide(policy, after, today=today)
    if first.action == "unlock" and second.action == "reminder":
        # Unlocked on a day a reminder is due: the reminder follows, then nothing more.
        second = decide(policy, replace(after, last_reminder_date=today), today=today)
    assert second.action is None
    assert second.target_state == first.target_state
    pending = decide(policy, replace(loan_state, pending_action=first.action), today=today)
    assert pending.action is None


def test_an_expired_margin_call_locks_a_current_loan_until_the_collateral_is_cured() -> None:
    today = DUE - timedelta(days=10)  # nothing due, nothing overdue, no reminder day
    short = state(collateral_short=True)
    first = decide(LockPolicy(), short, today=today)
    assert (first.action, first.reason, first.message_key) == (
        "lock",
        "margin-call-expired",
        "lock.margin_call",
    )
    locked = replace(short, device_state="locked")
    assert decide(LockPolicy(), locked, today=today).action is None
    cured = replace(locked, collateral_short=False)
    assert decide(LockPolicy(), cured, today=today).action == "unlock"
