"""Borrowers (personal data stored encrypted, with blind indexes) and consent records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base

BORROWER_KINDS = ("person", "merchant")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; read back aware (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a timezone-aware datetime is required")
        utc: datetime = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Borrower(Base):
    """A person (resident ID) or a merchant (unified social credit code).

    `*_enc` columns hold `kid:ciphertext` (see origination.pii); `*_index` columns hold HMAC
    blind indexes. `id_number` is the resident ID for a person and the USCC for a merchant.
    `key_id` is the key that sealed the row's values (rotation finds rows by it).
    """

    __tablename__ = "borrowers"
    __table_args__ = (
        UniqueConstraint("kind", "id_number_index", name="uq_borrowers_kind_id_number_index"),
        CheckConstraint("kind IN ('person', 'merchant')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    name_enc: Mapped[str] = mapped_column(Text)
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_number_index: Mapped[str] = mapped_column(String(64))
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    bank_card_enc: Mapped[str | None] = mapped_column(Text)
    address_enc: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[date | None]
    gender: Mapped[str | None] = mapped_column(String(8))
    region_code: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Consent(Base):
    """One consent given by a borrower for one purpose. Append-only: a withdrawal sets
    `withdrawn_at`; nothing else changes and nothing is deleted (database triggers refuse it)."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_borrower_id_purpose", "borrower_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(Text)
    text_version: Mapped[str] = mapped_column(String(40))
    sensitive: Mapped[bool]  # separate consent for sensitive personal information (PIPL art. 29)
    channel: Mapped[str | None] = mapped_column(String(40))
    ip_enc: Mapped[str | None] = mapped_column(Text)  # the client's address, encrypted
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
