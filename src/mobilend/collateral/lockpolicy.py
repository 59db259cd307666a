"""What the server should do to a device-lock phone today (pure).

`decide` looks at a loan's repayment state and the device's state and returns at most one
action. The rules, first match wins (docs/device-lock.md explains each):

1. Device already released: nothing, ever (the agent is gone).
2. Pledge forfeited: the phone belongs to the lender; lock it if unlocked, never release it.
3. Loan closed or pledge released: release the phone.
4. Days past due > `lock_after_grace_days`: lock it if unlocked.
5. Overdue within the grace: leave the device as it is (a locked phone stays locked until
   the loan is current; an unlocked one may still get a due-date reminder).
6. Nothing overdue and locked: unlock at once.
7. Unlocked: a reminder on each of `reminder_days_before` days before the next due date and,
   if `remind_on_due`, on the due date; at most one a day.

Days past due = today - oldest_unpaid_due_date (so 0 on the due date, 1 the day after). The
result depends only on the arguments, and deciding again once the action has taken effect
(device state updated, reminder date recorded, or the command still pending) gives no action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mobilend.collateral.commands import DEVICE_STATES, LOCK_MESSAGE_MAX, REMINDER_MESSAGE_MAX
from mobilend.core.errors import ValidationFailed

LOAN_STATUSES = ("active", "closed", "written_off", "defaulted")
PLEDGE_STATUSES = ("active", "released", "forfeited")
DECIDED_ACTIONS = ("lock", "unlock", "reminder", "release")
OFFLINE_LOCK_DAYS_RANGE = (3, 200)  # Samsung Knox Guard's offline-lock window

# Default English texts for each message key; {placeholders} are filled by the caller.
MESSAGE_TEMPLATES: Mapping[str, str] = {
    "lock.overdue": (
        "This phone is locked because a loan payment due on {due_date} is {days_past_due} "
        "days late. Pay in the {lender} app to unlock it at once. Emergency calls still work. "
        "Help: {support_phone}"
    ),
    "lock.forfeited": (
        "This phone was pledged to {lender} and the pledge has been enforced. "
        "Emergency calls still work. Please call {support_phone}."
    ),
    "lock.margin_call": (
        "This phone is locked because the margin call on its pledge was not met in time. "
        "Pay in the {lender} app or call us. Emergency calls still work. Help: {support_phone}"
    ),
    "unlock.current": "Thank you: your {lender} loan is up to date and this phone is unlocked.",
    "release.loan_closed": "Your {lender} loan is closed. This phone is released. Thank you!",
    "release.pledge_released": "{lender} has released its pledge on this phone. Thank you!",
    "reminder.before_due": "{lender}: your payment is due on {due_date}. Pay in the app.",
    "reminder.due_today": "{lender}: your payment is due today. Pay in the app.",
}


@dataclass(frozen=True)
class LockPolicy:
    """When to remind, lock and self-lock; product settings with Knox-like defaults."""

    reminder_days_before: tuple[int, ...] = (3, 1)
    remind_on_due: bool = True
    lock_after_grace_days: int = 4  # Safaricom locks 4 days after the due date (FACTS.md)
    offline_lock_days: int = 7
    command_ttl_hours: int = 72

    def __post_init__(self) -> None:
        days = self.reminder_days_before
        if not isinstance(days, tuple) or not all(_is_int(d) and 1 <= d <= 60 for d in days):
            raise ValidationFailed(
                "reminder_days_before", "range", "reminder days are whole days from 1 to 60"
            )
        if len(set(days)) != len(days):
            raise ValidationFailed("reminder_days_before", "unique", "reminder days repeat")
        _check_range("lock_after_grace_days", self.lock_after_grace_days, 0, 90)
        low, high = OFFLINE_LOCK_DAYS_RANGE
        _check_range("offline_lock_days", self.offline_lock_days, low, high)
        _check_range("command_ttl_hours", self.command_ttl_hours, 1, 720)
        if not isinstance(self.remind_on_due, bool):
            raise ValidationFailed("remind_on_due", "boolean", "remind_on_due is true or false")

    @property
    def command_ttl(self) -> timedelta:
        return timedelta(hours=self.command_ttl_hours)


@dataclass(frozen=True)
class DeviceLoanState:
    """A loan and its pledged phone as the server knows them today.

    - next_due_date: due date of the earliest installment not fully paid that falls due today
      or later (None when none is left).
    - oldest_unpaid_due_date: due date of the oldest installment with something overdue
      (None if the loan is current); never after today.
    - device_state: as last reported by the device, else as last acknowledged.
    - last_reminder_date: the day the last reminder was queued (None: never).
    - pending_action: the action of a command sent but not yet acknowledged or expired.
    """

    loan_status: str
    next_due_date: date | None
    oldest_unpaid_due_date: date | None
    device_state: str
    pledge_status: str
    last_reminder_date: date | None = None
    pending_action: str | None = None
    # The pledge's margin call expired and its loan-to-value is still in the margin-call zone.
    collateral_short: bool = False

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("loan_status", self.loan_status, LOAN_STATUSES),
            ("device_state", self.device_state, DEVICE_STATES),
            ("pledge_status", self.pledge_status, PLEDGE_STATUSES),
        ):
            if value not in allowed:
                raise ValidationFailed(field, "one-of", f"{field} must be one of {allowed}")
        if self.pending_action is not None and self.pending_action not in DECIDED_ACTIONS:
            raise ValidationFailed(
                "pending_action", "one-of", f"pending_action must be one of {DECIDED_ACTIONS}"
            )


@dataclass(frozen=True)
class Decision:
    """At most one action, why, the message template to show, and the state aimed for.

    `target_state` is where the device should end up ("unlocked", "locked", "released"); the
    server extends the device's offline deadline only while it is "unlocked".
    """

    action: str | None
    reason: str
    message_key: str | None = None
    target_state: str = "unlocked"
    days_past_due: int = 0

    @property
    def extend_offline_deadline(self) -> bool:
        return self.target_state == "unlocked"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(field: str, value: object, low: int, high: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ValidationFailed(field, "range", f"{field} must be a whole number {low}-{high}")


def _days_past_due(state: DeviceLoanState, today: date) -> int:
    oldest = state.oldest_unpaid_due_date
    if oldest is None:
        return 0
    if oldest > today:
        raise ValidationFailed(
            "oldest_unpaid_due_date",
            "not-after-today",
            "an overdue installment cannot be due later",
        )
    return (today - oldest).days


def _unless_pending(state: DeviceLoanState, decision: Decision) -> Decision:
    if decision.action is not None and decision.action == state.pending_action:
        return Decision(None, "action-pending", None, decision.target_state, decision.days_past_due)
    return decision


def _reminder(policy: LockPolicy, state: DeviceLoanState, today: date, dpd: int) -> Decision:
    due = state.next_due_date
    days_left = None if due is None else (due - today).days
    if days_left in policy.reminder_days_before:
        key, reason = "reminder.before_due", "reminder-before-due"
    elif days_left == 0 and policy.remind_on_due:
        key, reason = "reminder.due_today", "reminder-due-today"
    else:
        quiet = "overdue-within-grace" if dpd > 0 else "nothing-to-do"
        return Decision(None, quiet, None, "unlocked", dpd)
    if state.last_reminder_date == today:
        return Decision(None, "already-reminded-today", None, "unlocked", dpd)
    return Decision("reminder", reason, key, "unlocked", dpd)


def _decide(policy: LockPolicy, state: DeviceLoanState, today: date) -> Decision:
    dpd = _days_past_due(state, today)
    locked = state.device_state == "locked"
    if state.device_state == "released":
        return Decision(None, "device-released", None, "released", dpd)
    if state.pledge_status == "forfeited":
        if locked:
            return Decision(None, "forfeited-stays-locked", None, "locked", dpd)
        return Decision("lock", "pledge-forfeited", "lock.forfeited", "locked", dpd)
    if state.loan_status == "closed":
        return Decision("release", "loan-closed", "release.loan_closed", "released", dpd)
    if state.pledge_status == "released":
        return Decision("release", "pledge-released", "release.pledge_released", "released", dpd)
    if dpd > policy.lock_after_grace_days:
        if locked:
            return Decision(None, "overdue-stays-locked", None, "locked", dpd)
        return Decision("lock", "overdue-past-grace", "lock.overdue", "locked", dpd)
    if state.collateral_short:
        if locked:
            return Decision(None, "collateral-short-stays-locked", None, "locked", dpd)
        return Decision("lock", "margin-call-expired", "lock.margin_call", "locked", dpd)
    if dpd > 0 and locked:
        return Decision(None, "overdue-within-grace-stays-locked", None, "locked", dpd)
    if locked:
        return Decision("unlock", "loan-current", "unlock.current", "unlocked", dpd)
    return _reminder(policy, state, today, dpd)


def decide(policy: LockPolicy, state: DeviceLoanState, *, today: date) -> Decision:
    """The one action (or none) the server should send the device on `today`."""
    return _unless_pending(state, _decide(policy, state, today))


def offline_lock_at(last_check_in: datetime, policy: LockPolicy) -> datetime:
    """When a device that has not reached the server since `last_check_in` locks itself (UTC)."""
    if not isinstance(last_check_in, datetime) or last_check_in.utcoffset() is None:
        raise ValidationFailed(
            "last_check_in", "timezone-aware", "last_check_in must be a timezone-aware time"
        )
    moment = last_check_in.astimezone(UTC).replace(microsecond=0)
    return moment + timedelta(days=policy.offline_lock_days)


def render_message(
    message_key: str,
    values: Mapping[str, object],
    templates: Mapping[str, str] = MESSAGE_TEMPLATES,
) -> str:
    """Fill a template (default: the English ones); fails past the phone's length limit."""
    template = templates.get(message_key)
    if template is None:
        raise ValidationFailed("message_key", "one-of", f"no template {message_key!r}")
    try:
        text = template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValidationFailed(
            "values", "placeholders", f"cannot fill {message_key}: {exc}"
        ) from exc
    limit = LOCK_MESSAGE_MAX if message_key.startswith("lock.") else REMINDER_MESSAGE_MAX
    if len(text) > limit:
        raise ValidationFailed("message", "max-length", f"{len(text)} characters > {limit}")
    return text
