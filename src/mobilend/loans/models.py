"""Products, loans, installments, repayments and their allocations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mobilend.db.base import Base, Money, Precise
from mobilend.ledger.models import JournalEntry


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    borrower_ref: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(
        String(16), index=True
    )  # approved/active/closed/written_off
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[Decimal] = mapped_column(Money)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)  # frozen snapshot of the loan's terms
    disbursed_on: Mapped[date | None]
    accrued_through: Mapped[date | None]  # interest/penalty/fees recognised through this date
    penalty_carry: Mapped[Decimal] = mapped_column(Precise, default=Decimal(0))
    written_off_on: Mapped[date | None]
    closed_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    installments: Mapped[list[Installment]] = relationship(
        order_by="Installment.number", lazy="selectin", cascade="all, delete-orphan"
    )


class Installment(Base):
    """One scheduled installment and what has been charged and paid on it (the sub-ledger).

    charged_* grow as amounts become receivable (interest accrues, fees fall due, penalty
    accrues); paid_* grow with allocations. Outstanding = charged - paid. The ledger's
    receivable balances equal the sums of outstanding over installments (tested).
    """

    __tablename__ = "installments"
    __table_args__ = (UniqueConstraint("loan_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    number: Mapped[int]
    start_date: Mapped[date]
    due_date: Mapped[date]
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)  # scheduled interest
    fee: Mapped[Decimal] = mapped_column(Money)  # scheduled installment fee
    interest_accrued: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    fee_charged: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    penalty_charged: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    paid_principal: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    paid_interest: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    paid_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    paid_penalty: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    late_fee_charged: Mapped[bool] = mapped_column(default=False)
    cancelled: Mapped[bool] = mapped_column(default=False)  # superseded by a reschedule

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee


class Repayment(Base):
    """Money received for a loan. `entry_id` is the journal entry that currently applies it."""

    __tablename__ = "repayments"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # repayment / prepayment / recovery
    amount: Mapped[Decimal] = mapped_column(Money)
    value_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="posted")  # posted / reversed
    prepay_mode: Mapped[str | None] = mapped_column(String(24))
    reference: Mapped[str] = mapped_column(String(64), default="")
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    unallocated: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    entry: Mapped[JournalEntry | None] = relationship(foreign_keys=[entry_id])


class Allocation(Base):
    """How one application (journal entry) of a repayment was split over installments."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    repayment_id: Mapped[int] = mapped_column(ForeignKey("repayments.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    installment_number: Mapped[int]
    component: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)

    repayment: Mapped[Repayment] = relationship()
    entry: Mapped[JournalEntry] = relationship()
