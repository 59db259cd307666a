"""E-contract tables: contracts and the one-time signing codes sent to borrowers.

- `contracts`: one row per rendered agreement. The PDFs live in data_dir/contracts/, named by
  their SHA-256; a row holds the hashes (`draft_sha256`, and `signed_sha256` once signed), the
  key facts as JSON (figures only, no personal data), how and when the borrower consented, and
  the transparency-log leaf hash of the signature (`log_leaf_hash`).
- `contract_signing_codes`: codes sent by SMS; only a salted SHA-256 of the code is kept, with
  its expiry and the attempts made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime

CONTRACT_STATUSES = ("draft", "signed", "superseded")
CODE_STATUSES = ("pending", "used", "expired", "superseded")


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'signed', 'superseded')", name="status"),
        CheckConstraint("language IN ('zh-CN', 'en')", name="language"),
        Index(
            "uq_contracts_signed_loan",
            "loan_id",
            unique=True,
            sqlite_where=text("status = 'signed'"),
            postgresql_where=text("status = 'signed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    template_version: Mapped[str] = mapped_column(String(32))
    key_facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    draft_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(120), default="system")
    # signing: the borrower's intent, then the lender's PAdES signature
    consent_version: Mapped[str | None] = mapped_column(String(32))
    signer_device: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    signed_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    signer_certificate: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of its DER
    log_leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class SigningCode(Base):
    __tablename__ = "contract_signing_codes"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'used', 'expired', 'superseded')", name="status"),
        Index("ix_contract_signing_codes_contract", "contract_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    salt: Mapped[str] = mapped_column(String(32))  # hex
    code_hash: Mapped[str] = mapped_column(String(64))  # SHA-256(salt || code), hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
