"""Transparency log tables.

- `log_pending`: the log's outbox. `trust.log.record` adds a row in the caller's transaction;
  the relay (`trust.log.append_pending`) moves rows into the tree and deletes them.
- `log_entries`: one row per leaf, keyed by its index; ``leaf_input`` is the canonical JSON
  text whose UTF-8 bytes are hashed.
- `log_nodes`: the hash of every complete subtree, keyed ``(level, index)``: the subtree of
  ``2**level`` leaves starting at leaf ``index * 2**level`` (trust.merkle). Written once.
- `log_head`: exactly one row (id 1, made by the migration): the tree size and the compact
  frontier (`CompactTree.to_bytes`). Relays lock it, so appends never interleave.
- `log_tree_heads`: every signed tree head (STH), append-only.

Rows of the last four are never updated except `log_head`; `trust.log.audit` recomputes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilend.db.base import Base
from mobilend.origination.models import UtcDateTime

# BIGINT on PostgreSQL; plain INTEGER on SQLite, where only that is an auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class PendingEntry(Base):
    """A leaf waiting for the relay; its input and hash are fixed when it is recorded."""

    __tablename__ = "log_pending"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    leaf_input: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LogEntry(Base):
    __tablename__ = "log_entries"
    __table_args__ = (Index("ix_log_entries_leaf_hash", "leaf_hash", "leaf_index"),)

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_input: Mapped[str] = mapped_column(Text)
    # (leaf_hash, leaf_index): a proof by hash finds its index from the index alone, even on
    # a table autovacuum has not analyzed yet (bench/log_bench.py: 98 ms -> 3 ms at 1M).
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)  # when the relay appended it


class LogNode(Base):
    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    __tablename__ = "log_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)  # CompactTree.to_bytes()
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TreeHead(Base):
    """A signed tree head as published (see trust.signing)."""

    __tablename__ = "log_tree_heads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[int] = mapped_column(BigInteger)  # ms since the epoch, UTC
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
