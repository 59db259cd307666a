"""room on each page for the daily close's updates (HOT updates: no index entry per update)

The close updates every active loan and its current installment once a day, and its
delinquency row. With a fill factor below 100 an updated row version usually fits on its own
page and no index changes (a heap-only tuple). Applies to pages written from now on; run
VACUUM FULL (or pg_repack) on an existing large book to rewrite the old ones.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = {"installments": 80, "loans": 80, "loan_delinquency": 70}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, fill in TABLES.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
