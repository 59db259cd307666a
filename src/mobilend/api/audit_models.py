"""The operators' audit trail: one append-only table (database triggers refuse UPDATE/DELETE).

Four kinds of row share it (docs/audit-trail.md):

- `request`: a state-changing HTTP request (POST/PUT/PATCH/DELETE) by an authenticated
  operator, refused or not: route, status code, who, role, address, user agent;
- `change`: one inserted, updated or deleted row of an audited table, with the changed
  columns' before and after values (personal data masked), written in the same transaction
  as the change;
- `read`: a read of personal data (the borrower routes): who looked at which borrower;
- `auth`: a failed authorisation attempt (401 or 403), written in its own transaction.

Rows of one request share `correlation_id` (also sent back as the `X-Request-Id` header).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, BigInteger, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime

# BIGINT on PostgreSQL; plain INTEGER on SQLite, where only that is an auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

Kind = Literal["request", "change", "read", "auth"]
Outcome = Literal["ok", "refused", "error", "unauthenticated", "forbidden"]
KINDS: tuple[str, ...] = get_args(Kind)
OUTCOMES: tuple[str, ...] = get_args(Outcome)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_table_name_record_id", "table_name", "record_id"),
        Index("ix_audit_events_actor_id", "actor", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # wall clock, UTC
    correlation_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # request/read/auth: "METHOD /route/{template}"; change: insert | update | delete
    action: Mapped[str] = mapped_column(String(240))
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    # who: the credential's name and id and its role (a CLI actor has no credential id)
    actor: Mapped[str | None] = mapped_column(String(80))
    credential_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # api | cli | ...
    # from where
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    method: Mapped[str | None] = mapped_column(String(8))
    route: Mapped[str | None] = mapped_column(String(200))  # the path template, or CLI command
    path: Mapped[str | None] = mapped_column(String(500))  # the path requested (ids only)
    permission: Mapped[str | None] = mapped_column(String(40))
    # what (change and read rows)
    table_name: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
