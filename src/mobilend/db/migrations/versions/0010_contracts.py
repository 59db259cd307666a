"""e-contracts: contracts (hashes of the draft and signed PDFs) and one-time signing codes

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SIGNED = "status = 'signed'"


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("template_version", sa.String(length=32), nullable=False),
        sa.Column("key_facts", sa.JSON(), nullable=False),
        sa.Column("draft_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("consent_version", sa.String(length=32), nullable=True),
        sa.Column("signer_device", sa.JSON(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_sha256", sa.String(length=64), nullable=True),
        sa.Column("signer_certificate", sa.String(length=64), nullable=True),
        sa.Column("log_leaf_hash", sa.LargeBinary(length=32), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'signed', 'superseded')", name=op.f("ck_contracts_status")
        ),
        sa.CheckConstraint("language IN ('zh-CN', 'en')", name=op.f("ck_contracts_language")),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_contracts_borrower_id_borrowers")
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_contracts_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_borrower_id"), ["borrower_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_contracts_signed_sha256"), ["signed_sha256"], unique=False
        )
        batch_op.create_index(
            "uq_contracts_signed_loan",
            ["loan_id"],
            unique=True,
            sqlite_where=sa.text(SIGNED),
            postgresql_where=sa.text(SIGNED),
        )

    op.create_table(
        "contract_signing_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'used', 'expired', 'superseded')",
            name=op.f("ck_contract_signing_codes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_contract_signing_codes_contract_id_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_signing_codes")),
    )
    with op.batch_alter_table("contract_signing_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contract_signing_codes_contract", ["contract_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("contract_signing_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_signing_codes_contract")
    op.drop_table("contract_signing_codes")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contracts_signed_loan",
            sqlite_where=sa.text(SIGNED),
            postgresql_where=sa.text(SIGNED),
        )
        batch_op.drop_index(batch_op.f("ix_contracts_signed_sha256"))
        batch_op.drop_index(batch_op.f("ix_contracts_borrower_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_loan_id"))
    op.drop_table("contracts")
