"""Enqueue borrower notifications in the caller's unit of work (the transactional outbox)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.core.errors import ValidationFailed
from mobilend.notify.channels import CHANNELS
from mobilend.notify.models import OutboxMessage
from mobilend.notify.templates import DEFAULT_LANGUAGE, render


def enqueue(
    session: Session,
    *,
    topic: str,
    loan_id: int | None,
    params: dict[str, Any],
    business_date: date,
    now: datetime,
    dedupe_key: str,
    channel: str = "sms",
    language: str = DEFAULT_LANGUAGE,
) -> OutboxMessage | None:
    """Add a pending message; None if one with this dedupe_key exists. Renders once to check."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    render(topic, language, params)  # a missing parameter fails now, not at sending time
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)):
        return None
    message = OutboxMessage(
        dedupe_key=dedupe_key,
        topic=topic,
        channel=channel,
        loan_id=loan_id,
        language=language,
        params=params,
        business_date=business_date,
        created_at=now,
        status="pending",
        attempts=0,
    )
    session.add(message)
    return message


STATUSES = ("pending", "sent", "failed", "skipped")


def list_messages(
    session: Session,
    *,
    status: str | None = None,
    loan_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[OutboxMessage]:
    """Messages newest first; `before_id` pages back from the last id of a previous page."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed("status", "one-of", f"status must be one of {STATUSES}")
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit", "range", "limit must be 1-1000")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if loan_id is not None:
        query = query.where(OutboxMessage.loan_id == loan_id)
    if before_id is not None:
        query = query.where(OutboxMessage.id < before_id)
    return list(session.scalars(query))


def message_json(m: OutboxMessage) -> dict[str, Any]:
    """An outbox row for operators. Parameters are left out: some hold a one-time code."""

    def at(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": m.id,
        "topic": m.topic,
        "channel": m.channel,
        "loan_id": m.loan_id,
        "language": m.language,
        "business_date": m.business_date.isoformat(),
        "status": m.status,
        "attempts": m.attempts,
        "created_at": at(m.created_at),
        "next_attempt_at": at(m.next_attempt_at),
        "sent_at": at(m.sent_at),
        "recipient": m.recipient_hint,
        "channel_ref": m.channel_ref,
        "last_error": m.last_error,
    }
