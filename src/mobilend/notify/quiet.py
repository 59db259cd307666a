"""Quiet hours for borrower messages (pure): none between 22:00 and 08:00 borrower-local time.

The rule is collections' conduct rule 5 (collections.conduct, docs/collections.md), applied
with the same code: a message due in quiet hours waits for the end of them (08:00 local,
daylight-saving jumps handled by the zone's own clock); it is never dropped. A push message
lands on the phone like an SMS and is judged as one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mobilend.collections.conduct import ConductRules, ContactAttempt, next_allowed_time

RULES = ConductRules()  # quiet hours [22:00, 08:00) local
_AS_CONDUCT_CHANNEL = {"sms": "sms", "push": "sms", "email": "email"}


def send_from(at: datetime, *, timezone: str, channel: str) -> datetime:
    """The earliest instant at or after `at` (UTC) outside the borrower's quiet hours."""
    attempt = ContactAttempt(
        at=at,
        borrower_timezone=timezone,
        channel=_AS_CONDUCT_CHANNEL.get(channel, "sms"),
        contact_point="outbox",
    )
    allowed = next_allowed_time(attempt, history=(), rules=RULES)
    assert allowed is not None  # only the time rules can stop a borrower's own message
    return allowed


def in_quiet_hours(at: datetime, *, timezone: str, channel: str) -> bool:
    return send_from(at, timezone=timezone, channel=channel) > at.astimezone(UTC)
