"""Collateral tables: device catalog, price quotes, pledges, mark-to-market, device lock.

One IMEI backs at most one live pledge: a partial unique index on `pledges.imei` over the
live statuses (active, forfeited) enforces it in the database on SQLite and PostgreSQL.
`collateral_events` and `device_commands` are append-only records of what happened to a
pledge or a device (registered, valued, margin call, release, forfeiture, liquidation, lock,
unlock...): the audit trail of the collateral.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime

Ratio = Numeric(12, 6, asdecimal=True)

CUSTODY_MODES = ("pawn", "device_lock")
PLEDGE_STATUSES = ("active", "released", "forfeited", "liquidated")
LIVE_PLEDGE = ("active", "forfeited")
LTV_STATUSES = ("ok", "warning", "margin_call", "liquidation")


class DeviceModel(Base):
    __tablename__ = "device_models"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    brand: Mapped[str] = mapped_column(String(40), index=True)
    model: Mapped[str] = mapped_column(String(80))
    release_date: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    tier: Mapped[str] = mapped_column(String(16))
    successor_key: Mapped[str | None] = mapped_column(String(80))
    successor_release_date: Mapped[date | None]


class DeviceVariant(Base):
    __tablename__ = "device_variants"

    model_key: Mapped[str] = mapped_column(ForeignKey("device_models.key"), primary_key=True)
    storage_gb: Mapped[int] = mapped_column(primary_key=True)
    launch_price: Mapped[Decimal]


class DeviceTac(Base):
    """Type Allocation Code (first 8 digits of an IMEI) -> the model it identifies."""

    __tablename__ = "device_tacs"

    tac: Mapped[str] = mapped_column(String(8), primary_key=True)
    model_key: Mapped[str] = mapped_column(ForeignKey("device_models.key"), index=True)


class PriceQuote(Base):
    """A dated market quote for a model/storage/grade; importing the same quote twice is a no-op."""

    __tablename__ = "price_quotes"
    __table_args__ = (
        UniqueConstraint(
            "model_key", "storage_gb", "grade", "quoted_on", "source", name="uq_price_quotes_key"
        ),
        Index("ix_price_quotes_lookup", "model_key", "storage_gb", "grade", "quoted_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_key: Mapped[str] = mapped_column(ForeignKey("device_models.key"))
    storage_gb: Mapped[int]
    grade: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal]
    quoted_on: Mapped[date]
    source: Mapped[str] = mapped_column(String(80))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CollateralTerms(Base):
    """A product's collateral thresholds (ratios of outstanding to value) and lock policy."""

    __tablename__ = "collateral_terms"
    __table_args__ = (
        CheckConstraint(
            "0 < max_ltv AND max_ltv <= warning_ltv AND warning_ltv < margin_call_ltv"
            " AND margin_call_ltv < liquidation_ltv",
            name="ltv_order",
        ),
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    haircut: Mapped[Decimal] = mapped_column(Ratio)
    max_ltv: Mapped[Decimal] = mapped_column(Ratio)  # at booking: principal / lending value
    warning_ltv: Mapped[Decimal] = mapped_column(Ratio)
    margin_call_ltv: Mapped[Decimal] = mapped_column(Ratio)
    liquidation_ltv: Mapped[Decimal] = mapped_column(Ratio)
    margin_call_days: Mapped[int]
    required: Mapped[bool] = mapped_column(default=True)  # no disbursement without a pledge
    lock_policy: Mapped[dict[str, Any]] = mapped_column(JSON)


class Pledge(Base):
    """A phone pledged for a loan; `current_value` etc. are the last mark-to-market."""

    __tablename__ = "pledges"
    __table_args__ = (
        Index(
            "uq_pledges_live_imei",
            "imei",
            unique=True,
            sqlite_where=text("status IN ('active', 'forfeited')"),
            postgresql_where=text("status IN ('active', 'forfeited')"),
        ),
        CheckConstraint("custody_mode IN ('pawn', 'device_lock')", name="custody_mode"),
        CheckConstraint(
            "status IN ('active', 'released', 'forfeited', 'liquidated')", name="status"
        ),
        CheckConstraint(
            "ltv_status IN ('ok', 'warning', 'margin_call', 'liquidation')", name="ltv_status"
        ),
        # Half of each page left free: the daily mark rewrites every active pledge, and with
        # room on the page PostgreSQL updates in place (HOT) without touching the indexes.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))  # the loan's, for terms
    imei: Mapped[str] = mapped_column(String(15))
    model_key: Mapped[str] = mapped_column(ForeignKey("device_models.key"))
    storage_gb: Mapped[int]
    grade: Mapped[str] = mapped_column(String(16))
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    carrier_locked: Mapped[bool] = mapped_column(default=False)
    value_factor: Mapped[Decimal] = mapped_column(Ratio)  # carrier factor on the grade's value
    custody_mode: Mapped[str] = mapped_column(String(16))
    location: Mapped[str | None] = mapped_column(String(120))  # store / warehouse (pawn)
    status: Mapped[str] = mapped_column(String(16), default="active")
    pledged_on: Mapped[date]
    closed_on: Mapped[date | None]
    # valuation at booking and the latest mark-to-market
    booking_value: Mapped[Decimal]
    lending_value: Mapped[Decimal]
    current_value: Mapped[Decimal]
    outstanding: Mapped[Decimal]
    ltv: Mapped[Decimal | None] = mapped_column(Ratio)
    ltv_status: Mapped[str] = mapped_column(String(16), default="ok")
    shortfall: Mapped[Decimal] = mapped_column(default=Decimal(0))
    marked_on: Mapped[date | None]
    sale_proceeds: Mapped[Decimal | None]
    surplus: Mapped[Decimal | None]


class MarginCall(Base):
    """Top up the collateral or prepay `prepayment_to_cure` by `due_on`; at most one open."""

    __tablename__ = "margin_calls"
    __table_args__ = (
        Index(
            "uq_margin_calls_open",
            "pledge_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    opened_on: Mapped[date]
    due_on: Mapped[date]
    ltv: Mapped[Decimal] = mapped_column(Ratio)
    shortfall: Mapped[Decimal]
    prepayment_to_cure: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / cured / expired
    closed_on: Mapped[date | None]


class CollateralEvent(Base):
    """Append-only: what happened to a pledge, on which business date, with the figures."""

    __tablename__ = "collateral_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Device(Base):
    """A phone under device lock: enrolled with its own Ed25519 key and a one-time token."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    public_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="provisioning")  # enrolled/released
    reported_state: Mapped[str] = mapped_column(String(16), default="unlocked")
    imeis: Mapped[list[str]] = mapped_column(JSON, default=list)
    sim_mcc_mnc: Mapped[str | None] = mapped_column(String(8))
    sim_changed: Mapped[bool] = mapped_column(default=False)
    rooted: Mapped[bool] = mapped_column(default=False)
    tampered: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    offline_lock_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DeviceCommand(Base):
    """A signed command for a device: pending until delivered, then acknowledged."""

    __tablename__ = "device_commands"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(120))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    business_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    result_reason: Mapped[str | None] = mapped_column(Text)


class DeviceCheckIn(Base):
    """Each accepted check-in (its nonce is never accepted twice for a device)."""

    __tablename__ = "device_check_ins"
    __table_args__ = (UniqueConstraint("device_id", "nonce", name="uq_device_check_ins_nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
