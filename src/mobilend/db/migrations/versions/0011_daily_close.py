"""daily close: runs and their tasks, loan delinquency state, events and month-end snapshots;
the task engine's schema (Procrastinate) on PostgreSQL

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 2)


def upgrade() -> None:
    op.create_table(
        "close_runs",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),  # running / done
        sa.Column("engine", sa.String(16), nullable=False),  # procrastinate / in-process
        sa.Column("partition_size", sa.Integer(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.String(120), nullable=False),
    )
    op.create_table(
        "close_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("step", sa.String(24), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),  # loan ids lo <= id < hi
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending / done
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(120), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["business_date"], ["close_runs.business_date"]),
        sa.UniqueConstraint("business_date", "step", "part", name="uq_close_tasks_part"),
    )
    op.create_table(
        "loan_delinquency",
        sa.Column("loan_id", sa.Integer(), sa.ForeignKey("loans.id"), primary_key=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("loan_class", sa.String(16), nullable=False),
        sa.Column("class_floor", sa.String(16), nullable=True),  # a manual "at least" tier
        sa.Column("npl", sa.Boolean(), nullable=False),
        sa.Column("oldest_due_date", sa.Date(), nullable=True),
        sa.Column("overdue_principal", MONEY, nullable=False),
        sa.Column("overdue_interest", MONEY, nullable=False),
        sa.Column("overdue_fee", MONEY, nullable=False),
        sa.Column("overdue_penalty", MONEY, nullable=False),
        sa.Column("outstanding_principal", MONEY, nullable=False),
        sa.Column("exposure", MONEY, nullable=False),
        sa.Column("collateral_value", MONEY, nullable=True),
        sa.Column("provision", MONEY, nullable=False),
    )
    op.create_index("ix_loan_delinquency_bucket", "loan_delinquency", ["bucket", "dpd"])
    op.create_table(
        "delinquency_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("loan_id", sa.Integer(), sa.ForeignKey("loans.id"), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("from_bucket", sa.String(16), nullable=True),
        sa.Column("to_bucket", sa.String(16), nullable=False),
        sa.Column("from_class", sa.String(16), nullable=True),
        sa.Column("to_class", sa.String(16), nullable=False),
    )
    op.create_index("ix_delinquency_events_loan", "delinquency_events", ["loan_id", "id"])
    op.create_index("ix_delinquency_events_date", "delinquency_events", ["business_date"])
    op.create_table(
        "delinquency_snapshots",  # one row per open loan at each month-end close
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("loan_id", sa.Integer(), primary_key=True),
        sa.Column("disbursed_on", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("loan_class", sa.String(16), nullable=False),
        sa.Column("outstanding_principal", MONEY, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        driver = op.get_bind().connection.driver_connection
        assert driver is not None  # psycopg's own execute: the schema's SQL has literal % signs
        driver.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
            "procrastinate_jobs, procrastinate_workers CASCADE"
        )
        op.execute(
            "DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type CASCADE"
        )
    for table in (
        "delinquency_snapshots",
        "delinquency_events",
        "loan_delinquency",
        "close_tasks",
        "close_runs",
    ):
        op.drop_table(table)
