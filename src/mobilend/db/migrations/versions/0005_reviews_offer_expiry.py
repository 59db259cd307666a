"""append-only manual reviews of referred applications (offer expiry lives on the record)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PG_TRIGGERS = """
CREATE OR REPLACE FUNCTION application_reviews_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'application_reviews is append-only' USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER application_reviews_append_only BEFORE UPDATE OR DELETE ON application_reviews
  FOR EACH ROW EXECUTE FUNCTION application_reviews_append_only();
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER application_reviews_no_{name} BEFORE {name.upper()} ON application_reviews
        BEGIN SELECT RAISE(ABORT, 'application_reviews is append-only'); END"""
    for name in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "application_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("reviewer_credential_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_name", sa.String(length=80), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_reviews_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_credential_id"],
            ["api_credentials.id"],
            name=op.f("fk_application_reviews_reviewer_credential_id_api_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_reviews")),
        sa.UniqueConstraint("application_id", name=op.f("uq_application_reviews_application_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGERS)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS application_reviews_append_only ON application_reviews")
        op.execute("DROP FUNCTION IF EXISTS application_reviews_append_only()")
    else:
        for name in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS application_reviews_no_{name}")
    op.drop_table("application_reviews")
