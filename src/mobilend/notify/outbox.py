"""Enqueue borrower notifications in the caller's unit of work (the transactional outbox)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.notify.models import OutboxMessage
from mobilend.notify.templates import DEFAULT_LANGUAGE, render

CHANNELS = ("sms", "push", "email")


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
