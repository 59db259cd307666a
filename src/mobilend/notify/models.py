"""The transactional outbox: messages written in the same transaction as their cause.

The relay (notify.relay) renders and sends pending rows through the channel adapters; until
then they wait here, never lost with a rolled-back change and never sent for one.
`dedupe_key` makes enqueueing the same notice twice a no-op.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_pending", "status", "id"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    topic: Mapped[str] = mapped_column(String(64))  # the template key
    channel: Mapped[str] = mapped_column(String(16))  # sms / push / email
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    business_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # pending / sent / failed / skipped (a reminder no longer needed when its turn came)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the relay (migration 0012): NULL next_attempt_at = due at once; a claim, a retry's backoff
    # or a quiet-hours deferral moves it forward
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recipient_hint: Mapped[str | None] = mapped_column(String(64))  # masked, e.g. 138****5678
    channel_ref: Mapped[str | None] = mapped_column(String(120))  # the provider's message id
