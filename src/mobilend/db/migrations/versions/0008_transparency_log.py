"""transparency log: pending leaves, entries, subtree nodes, the head, signed tree heads

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EMPTY_FRONTIER = bytes(8)  # CompactTree().to_bytes(): size 0, no hashes
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
APPEND_ONLY = ("log_entries", "log_nodes", "log_tree_heads")

PG_TRIGGERS = """
CREATE OR REPLACE FUNCTION log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION log_append_only();
"""
    for table in APPEND_ONLY
)

PG_DROP = "".join(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};\n" for t in APPEND_ONLY) + (
    "DROP FUNCTION IF EXISTS log_append_only();"
)

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_no_{name} BEFORE {name.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
    for table in APPEND_ONLY
    for name in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "log_pending",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("leaf_input", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_pending")),
    )
    op.create_table(
        "log_entries",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf_input", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_log_entries")),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index("ix_log_entries_leaf_hash", ["leaf_hash", "leaf_index"], unique=False)

    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_log_nodes")),
    )
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_log_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_head")),
    )
    op.create_table(
        "log_tree_heads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_tree_heads")),
    )
    with op.batch_alter_table("log_tree_heads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_log_tree_heads_tree_size"), ["tree_size"], unique=False
        )

    assert log_head is not None
    op.bulk_insert(
        log_head,
        [{"id": 1, "tree_size": 0, "frontier": EMPTY_FRONTIER, "root_hash": EMPTY_ROOT}],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGERS)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DROP)
    else:
        for table in APPEND_ONLY:
            for name in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{name}")
    with op.batch_alter_table("log_tree_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_tree_heads_tree_size"))
    op.drop_table("log_tree_heads")
    op.drop_table("log_head")
    op.drop_table("log_nodes")
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_log_entries_leaf_hash")
    op.drop_table("log_entries")
    op.drop_table("log_pending")
