"""Collections tables: cases, agents, contacts, actions (and refused attempts), promises to pay,
restructurings and legal escalations (migration 0013; docs/collections.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime

CASE_STATUSES = ("open", "promised", "legal", "closed")
PROMISE_STATUSES = ("open", "kept", "broken")
AGENT_ROLES = ("agent", "supervisor", "legal")


class CollectionCase(Base):
    """One delinquent loan being worked: at most one case per loan that is not closed."""

    __tablename__ = "collection_cases"
    __table_args__ = (
        Index(
            "uq_collection_cases_open_loan",
            "loan_id",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_collection_cases_queue_status", "queue", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    queue: Mapped[str] = mapped_column(String(24))  # "M1-low", "M2-high", ..., "legal"
    status: Mapped[str] = mapped_column(String(16))  # open / promised / legal / closed
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("collection_agents.id"), index=True)
    assigned_on: Mapped[date | None]
    opened_on: Mapped[date]
    closed_on: Mapped[date | None]
    close_reason: Mapped[str | None] = mapped_column(String(16))  # cured/repaid/written_off
    dpd_at_open: Mapped[int]
    broken_promises: Mapped[int] = mapped_column(default=0)
    do_not_contact: Mapped[bool] = mapped_column(default=False)  # letters only


class CollectionAgent(Base):
    """A collector: the queues they work and how many open cases they can carry."""

    __tablename__ = "collection_agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # agent / supervisor / legal
    queues: Mapped[list[str]] = mapped_column(JSON)
    capacity: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)


class CollectionContact(Base):
    """A way to reach a loan's borrower, or a related party the borrower named.

    `contact_point` is the HMAC blind index of the phone number, e-mail or address (what the
    conduct rules count attempts by); the value itself is stored encrypted and shown masked.
    """

    __tablename__ = "collection_contacts"
    __table_args__ = (UniqueConstraint("loan_id", "contact_point"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    relation: Mapped[str] = mapped_column(String(24))  # borrower / emergency_contact
    relationship: Mapped[str] = mapped_column(String(24))  # self / spouse / parent / ...
    kind: Mapped[str] = mapped_column(String(16))  # phone / email / address
    contact_point: Mapped[str] = mapped_column(String(64), index=True)
    value_enc: Mapped[str] = mapped_column(Text)
    masked: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    consented_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    added_on: Mapped[date]


class CollectionAction(Base):
    """A contact made (call, SMS, visit, letter, e-mail) that passed the conduct rules."""

    __tablename__ = "collection_actions"
    __table_args__ = (Index("ix_collection_actions_point_at", "contact_point", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("collection_agents.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("collection_contacts.id"))
    contact_point: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(24))
    purpose: Mapped[str] = mapped_column(String(16))  # collect / locate
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(String(500), default="")


class CollectionRefusal(Base):
    """An attempted contact the conduct rules refused: logged, never counted as made."""

    __tablename__ = "collection_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("collection_agents.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("collection_contacts.id"))
    contact_point: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    rule: Mapped[str] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(300))


class PromiseRecord(Base):
    """A promise to pay (承诺还款): open until payments cover it (kept) or its date passes."""

    __tablename__ = "collection_promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("collection_agents.id"))
    amount: Mapped[Decimal]
    made_on: Mapped[date]
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), index=True)  # open / kept / broken
    paid: Mapped[Decimal] = mapped_column(default=Decimal(0))
    resolved_on: Mapped[date | None]


class Restructuring(Base):
    """A restructuring offer (term extension and/or reduced installment) and its acceptance."""

    __tablename__ = "collection_restructurings"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("collection_cases.id"))
    status: Mapped[str] = mapped_column(String(16))  # offered / accepted / expired
    extension_months: Mapped[int]
    new_installment: Mapped[Decimal | None]
    offered_on: Mapped[date]
    valid_until: Mapped[date]
    accepted_on: Mapped[date | None]
    dpd: Mapped[int]
    outstanding_principal: Mapped[Decimal]
    arrears: Mapped[Decimal]  # interest, fees and penalty due on the acceptance date
    periods: Mapped[int]  # installments of the new schedule
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    previous_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LegalEscalation(Base):
    """A case referred to legal review (诉讼/仲裁): from the product's legal_after_dpd."""

    __tablename__ = "collection_legal"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("collection_agents.id"))
    escalated_on: Mapped[date]
    dpd: Mapped[int]
    exposure: Mapped[Decimal]
    reason: Mapped[str] = mapped_column(String(300))
