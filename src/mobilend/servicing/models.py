"""Daily close runs and tasks; each loan's delinquency state, its changes and snapshots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime


class CloseRun(Base):
    """The close of one business date: running until every task is done, then done for good."""

    __tablename__ = "close_runs"

    business_date: Mapped[date] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running / done
    engine: Mapped[str] = mapped_column(String(16))  # procrastinate / in-process
    partition_size: Mapped[int]
    loans: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    requested_by: Mapped[str] = mapped_column(String(120))


class CloseTask(Base):
    """One step of a close, for one range of loan ids (lo <= id < hi) or for the whole book."""

    __tablename__ = "close_tasks"
    __table_args__ = (
        UniqueConstraint("business_date", "step", "part", name="uq_close_tasks_part"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(ForeignKey("close_runs.business_date"))
    step: Mapped[str] = mapped_column(String(24))
    part: Mapped[int]
    lo: Mapped[int] = mapped_column(BigInteger)
    hi: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending / done
    rows: Mapped[int]
    worker: Mapped[str | None] = mapped_column(String(120))
    attempts: Mapped[int]
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LoanDelinquency(Base):
    """A loan's delinquency, tier and provision as of the last close (one row per loan)."""

    __tablename__ = "loan_delinquency"

    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    business_date: Mapped[date]
    dpd: Mapped[int]
    bucket: Mapped[str] = mapped_column(String(16))
    loan_class: Mapped[str] = mapped_column(String(16))
    class_floor: Mapped[str | None] = mapped_column(String(16))
    npl: Mapped[bool]
    oldest_due_date: Mapped[date | None]
    overdue_principal: Mapped[Decimal]
    overdue_interest: Mapped[Decimal]
    overdue_fee: Mapped[Decimal]
    overdue_penalty: Mapped[Decimal]
    outstanding_principal: Mapped[Decimal]
    exposure: Mapped[Decimal]
    collateral_value: Mapped[Decimal | None]
    provision: Mapped[Decimal]


class DelinquencyEvent(Base):
    """A change of bucket or tier found by a close."""

    __tablename__ = "delinquency_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    business_date: Mapped[date]
    dpd: Mapped[int]
    from_bucket: Mapped[str | None] = mapped_column(String(16))
    to_bucket: Mapped[str] = mapped_column(String(16))
    from_class: Mapped[str | None] = mapped_column(String(16))
    to_class: Mapped[str] = mapped_column(String(16))


class DelinquencySnapshot(Base):
    """Each open loan's state at a month-end close: the input of roll rates and vintages."""

    __tablename__ = "delinquency_snapshots"

    business_date: Mapped[date] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(primary_key=True)
    disbursed_on: Mapped[date]
    dpd: Mapped[int]
    bucket: Mapped[str] = mapped_column(String(16))
    loan_class: Mapped[str] = mapped_column(String(16))
    outstanding_principal: Mapped[Decimal]
