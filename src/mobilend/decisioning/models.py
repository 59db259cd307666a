"""Loan applications and their decision records (the record is immutable once written).

An application's `status` is its decision ("approve", "refer", "decline"), or for a referred
application the outcome of its manual review ("approve", "decline"), until an approved offer is
accepted ("accepted", with `loan_id`). The decision record holds everything the decision looked
at and produced (see docs/decisioning.md) and the sha256 of its canonical JSON; database
triggers refuse any UPDATE or DELETE on decision_records (migration 0004) and on
application_reviews (migration 0005): a review is a separate row, never an edit of the record.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base, Money
from mobilend.origination.models import UtcDateTime


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    product_code: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money)
    periods: Mapped[int]
    purpose: Mapped[str] = mapped_column(String(40), default="")
    business_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16))  # approve / refer / decline / accepted
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)  # the intake as received (no raw PII)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DecisionRecord(Base):
    """Everything the decision looked at and produced; append-only (database triggers)."""

    __tablename__ = "decision_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # features, scores, hits, offer, reasons
    record_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical record
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApplicationReview(Base):
    """A credit officer's decision on a referred application; append-only (database triggers),
    at most one per application. Who is the API credential (id and name at the time)."""

    __tablename__ = "application_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))  # approve / decline
    reason: Mapped[str] = mapped_column(String(500))
    reviewer_credential_id: Mapped[int] = mapped_column(ForeignKey("api_credentials.id"))
    reviewer_name: Mapped[str] = mapped_column(String(80))
    business_date: Mapped[date]
    reviewed_at: Mapped[datetime] = mapped_column(UtcDateTime())  # aware, stored in UTC
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
