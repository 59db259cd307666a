"""Which reminder an installment gets on a date, and how a planned one is restated when sent.

Dates are counted by hand in the comments (2025 is not a leap year: February has 28 days).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from mobilend.servicing.policy import ReminderPlan
from mobilend.servicing.reminders import Reminder, due_dates, refresh, reminder_on

DEFAULT = ReminderPlan()  # before 3 and 1 days, on the day, after 1, 3, 7, 15, 30 days
ON = date(2025, 2, 12)


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (date(2025, 2, 15), Reminder("before_due", 3)),
        (date(2025, 2, 14), None),  # 2 days ahead: not in the plan
        (date(2025, 2, 13), Reminder("before_due", 1)),
        (date(2025, 2, 12), Reminder("due_today", 0)),
        (date(2025, 2, 11), Reminder("overdue", 1)),
        (date(2025, 2, 9), Reminder("overdue", 3)),
        (date(2025, 2, 5), Reminder("overdue", 7)),
        (date(2025, 1, 28), Reminder("overdue", 15)),  # 12 days back to Jan 31, 3 more
        (date(2025, 1, 13), Reminder("overdue", 30)),  # 12 back to Jan 31, 18 more
        (date(2025, 1, 14), None),  # 29 days overdue
        (date(2025, 3, 15), None),
    ],
)
def test_reminder_on_the_default_plan(due: date, expected: Reminder | None) -> None:
    assert reminder_on(DEFAULT, due_date=due, on=ON) == expected


def test_topics() -> None:
    assert Reminder("before_due", 3).topic == "repayment.before_due"
    assert Reminder("overdue", 7).topic == "repayment.overdue"


def test_due_dates_across_a_month_end() -> None:
    """On 2025-03-01: 30 days back is Jan 30 (1 day to Feb 28, 28 to Jan 31, 1 more)."""
    assert due_dates(DEFAULT, date(2025, 3, 1)) == {
        date(2025, 3, 4): Reminder("before_due", 3),
        date(2025, 3, 2): Reminder("before_due", 1),
        date(2025, 3, 1): Reminder("due_today", 0),
        date(2025, 2, 28): Reminder("overdue", 1),
        date(2025, 2, 26): Reminder("overdue", 3),
        date(2025, 2, 22): Reminder("overdue", 7),
        date(2025, 2, 14): Reminder("overdue", 15),
        date(2025, 1, 30): Reminder("overdue", 30),
    }


def test_a_narrower_plan() -> None:
    plan = ReminderPlan(before_due_days=[5], on_due=False, after_due_days=[2], channel="push")
    assert due_dates(plan, ON) == {
        date(2025, 2, 17): Reminder("before_due", 5),
        date(2025, 2, 10): Reminder("overdue", 2),
    }
    assert reminder_on(plan, due_date=ON, on=ON) is None


@pytest.mark.parametrize("plan", [DEFAULT, ReminderPlan(before_due_days=[1, 7], on_due=False)])
def test_due_dates_is_reminder_on_inverted(plan: ReminderPlan) -> None:
    """Over 80 due dates around each of 40 business dates, the two functions agree."""
    for k in range(40):
        on = date(2024, 12, 20) + timedelta(days=k)
        targets = due_dates(plan, on)
        for offset in range(-40, 40):
            due = on + timedelta(days=offset)
            assert reminder_on(plan, due_date=due, on=on) == targets.get(due)


PLANNED = {"loan_id": 7, "number": 1, "due_date": "2025-02-15", "days": 3, "amount": "408.03"}


def test_refresh_restates_days_and_amount_on_the_local_date() -> None:
    # planned on Feb 12 for Feb 15, sent the next morning: 2 days left; 8.03 paid meanwhile
    sent = refresh("repayment.before_due", PLANNED, today=date(2025, 2, 13), owed=Decimal("400"))
    assert sent == {**PLANNED, "days": 2, "amount": "400.00"}
    overdue = {**PLANNED, "days": 3}
    assert refresh(
        "repayment.overdue", overdue, today=date(2025, 2, 19), owed=Decimal("408.03")
    ) == {**overdue, "days": 4, "amount": "408.03"}
    today = {**PLANNED, "days": 0}
    assert refresh("repayment.due_today", today, today=date(2025, 2, 15), owed=Decimal("1")) == {
        **today,
        "amount": "1.00",
    }


@pytest.mark.parametrize(
    ("topic", "today", "owed"),
    [
        ("repayment.before_due", date(2025, 2, 13), None),  # loan closed or installment gone
        ("repayment.before_due", date(2025, 2, 13), Decimal("0.00")),  # paid
        ("repayment.before_due", date(2025, 2, 15), Decimal("408.03")),  # "due in 0 days"
        ("repayment.due_today", date(2025, 2, 16), Decimal("408.03")),  # the day has passed
        ("repayment.overdue", date(2025, 2, 15), Decimal("408.03")),  # not overdue yet
    ],
)
def test_refresh_skips_what_the_borrower_no_longer_needs(
    topic: str, today: date, owed: Decimal | None
) -> None:
    assert refresh(topic, PLANNED, today=today, owed=owed) is None
