"""borrowers (personal data encrypted, blind indexes) and append-only consents

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A consent changes only by its withdrawal (withdrawn_at set once) and by key rotation
# (ip_enc re-sealed); it is never deleted.
IMMUTABLE = (
    "id",
    "borrower_id",
    "purpose",
    "scope",
    "text_version",
    "sensitive",
    "channel",
    "granted_at",
    "created_at",
)
OLD = ", ".join(f"OLD.{c}" for c in IMMUTABLE)
NEW = ", ".join(f"NEW.{c}" for c in IMMUTABLE)

PG_CONSENTS = f"""
CREATE OR REPLACE FUNCTION consents_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'consents are never deleted' USING ERRCODE = '23514';
  END IF;
  IF ({NEW}) IS DISTINCT FROM ({OLD})
     OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_at IS DISTINCT FROM OLD.withdrawn_at)
     OR ((OLD.ip_enc IS NULL) <> (NEW.ip_enc IS NULL)) THEN
    RAISE EXCEPTION 'a consent changes only by its withdrawal' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
  FOR EACH ROW EXECUTE FUNCTION consents_append_only();
"""

SQLITE_CONSENTS = [
    """CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
        BEGIN SELECT RAISE(ABORT, 'consents are never deleted'); END""",
    f"""CREATE TRIGGER consents_only_withdrawal BEFORE UPDATE ON consents
        WHEN {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE)}
          OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_at IS NOT OLD.withdrawn_at)
          OR ((OLD.ip_enc IS NULL) <> (NEW.ip_enc IS NULL))
        BEGIN SELECT RAISE(ABORT, 'a consent changes only by its withdrawal'); END""",
]


def upgrade() -> None:
    op.create_table(
        "borrowers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("id_number_index", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("bank_card_enc", sa.Text(), nullable=True),
        sa.Column("address_enc", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('person', 'merchant')", name=op.f("ck_borrowers_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowers")),
        sa.UniqueConstraint("kind", "id_number_index", name="uq_borrowers_kind_id_number_index"),
    )
    op.create_index("ix_borrowers_key_id", "borrowers", ["key_id"])
    op.create_index("ix_borrowers_phone_index", "borrowers", ["phone_index"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("text_version", sa.String(length=40), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("ip_enc", sa.Text(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_consents_borrower_id_borrowers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index("ix_consents_borrower_id_purpose", "consents", ["borrower_id", "purpose"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_CONSENTS)
    else:
        for ddl in SQLITE_CONSENTS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consents_append_only ON consents")
        op.execute("DROP FUNCTION IF EXISTS consents_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS consents_only_withdrawal")
        op.execute("DROP TRIGGER IF EXISTS consents_no_delete")
    op.drop_index("ix_consents_borrower_id_purpose", table_name="consents")
    op.drop_table("consents")
    op.drop_index("ix_borrowers_phone_index", table_name="borrowers")
    op.drop_index("ix_borrowers_key_id", table_name="borrowers")
    op.drop_table("borrowers")
