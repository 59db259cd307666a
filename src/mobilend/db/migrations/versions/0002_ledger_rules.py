"""ledger rules: chart of accounts, append-only journal, zero-sum deferred trigger (PostgreSQL)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from mobilend.ledger.accounts import CHART

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PG_BALANCE = """
CREATE OR REPLACE FUNCTION journal_entry_balanced() RETURNS trigger AS $$
DECLARE off numeric;
BEGIN
  SELECT COALESCE(SUM(amount), 0) INTO off FROM journal_lines
   WHERE entry_id = NEW.entry_id AND currency = NEW.currency;
  IF off <> 0 THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: off by %',
      NEW.entry_id, NEW.currency, off
      USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced();
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE ON journal_lines
  FOR EACH ROW EXECUTE FUNCTION journal_append_only();
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
  FOR EACH ROW EXECUTE FUNCTION journal_append_only();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS journal_entries_append_only ON journal_entries;
DROP TRIGGER IF EXISTS journal_lines_append_only ON journal_lines;
DROP TRIGGER IF EXISTS journal_lines_balanced ON journal_lines;
DROP FUNCTION IF EXISTS journal_append_only();
DROP FUNCTION IF EXISTS journal_entry_balanced();
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_no_{op_name} BEFORE {op_name.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
    for table in ("journal_lines", "journal_entries")
    for op_name in ("update", "delete")
]


def upgrade() -> None:
    accounts = sa.table(
        "ledger_accounts",
        sa.column("code", sa.String),
        sa.column("kind", sa.String),
        sa.column("name_en", sa.String),
        sa.column("name_zh", sa.String),
    )
    op.bulk_insert(
        accounts,
        [
            {"code": acc.value, "kind": kind.value, "name_en": en, "name_zh": zh}
            for acc, (kind, en, zh) in CHART.items()
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_BALANCE)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DROP)
    else:
        for table in ("journal_lines", "journal_entries"):
            for op_name in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op_name}")
    op.execute("DELETE FROM ledger_accounts")
