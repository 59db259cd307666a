"""The database-backed transparency log: record, append, sign, prove, audit.

- `record` writes a leaf to `log_pending` in the caller's transaction (the log's outbox): a
  rolled-back change leaves nothing to log, a committed one is never lost.
- `append_pending` (the relay; `relay` loops it) moves pending leaves into the tree in one
  transaction: entries, the subtree nodes each append completes (`CompactTree.append`) and the
  new frontier in the single `log_head` row, which it locks first (`SELECT ... FOR UPDATE` on
  PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers), so two relays never interleave.
  An append reads no entry or node: O(log n) hashes and writes per leaf.
- `sign_tree_head` signs the head's root (checked against the stored nodes) and keeps the STH.
- `inclusion_proof`, `consistency_proof` read O(log n) stored nodes in one query; `entries`
  serves leaves by index range.
- `trust.audit` recomputes everything from the leaf inputs, page by page in constant memory.

No function reads a clock or commits. See docs/transparency-log.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.db.session import unit_of_work
from mobilend.trust import merkle, signing
from mobilend.trust.merkle import CompactTree, NodeLookup
from mobilend.trust.models import LogEntry, LogHead, LogNode, PendingEntry, TreeHead
from mobilend.trust.signing import SignedTreeHead

HEAD_ID = 1
BATCH = 10_000  # leaves per relay transaction
MAX_ENTRIES = 1_000  # entries per get-entries answer (like CT, a longer range is cut short)
T = TypeVar("T")


# -- recording (the caller's transaction) ------------------------------------------------


def record(
    session: Session,
    *,
    kind: str,
    refs: Mapping[str, int | str],
    digest: bytes | str,
    at: datetime,
) -> PendingEntry:
    """Queue a leaf for the log; its input (and so its hash) is fixed now. Ids only in `refs`,
    the SHA-256 of the business record in `digest` (bytes or hex); `at` is the event's time."""
    data = signing.leaf_input(kind=kind, refs=refs, digest=digest, at=at)
    row = PendingEntry(
        kind=kind,
        leaf_input=data.decode("utf-8"),
        leaf_hash=merkle.leaf_hash(data),
        recorded_at=at,
    )
    session.add(row)
    session.flush()
    return row


# -- appending (the relay) ---------------------------------------------------------------


def _head(session: Session, *, lock: bool) -> LogHead:
    stmt = select(LogHead).where(LogHead.id == HEAD_ID)
    if lock:
        stmt = stmt.with_for_update()
    head = session.scalar(stmt.execution_options(populate_existing=True))
    if head is None:
        raise Conflict("the log has no head row: run `mobilend db upgrade`", field="log_head")
    return head


def _frontier(head: LogHead) -> CompactTree:
    tree = CompactTree.from_bytes(head.frontier)
    if tree.size != head.tree_size:
        raise Conflict(
            f"the log head says {head.tree_size} leaves, its frontier {tree.size}: run an audit",
            field="log_head",
            rule="log-corrupt",
        )
    return tree


def append_pending(session: Session, *, now: datetime, limit: int = BATCH) -> int:
    """Append up to `limit` pending leaves in id order; return how many. One writer at a time."""
    if limit < 1:
        raise ValidationFailed("limit", "positive", "limit must be at least 1")
    head = _head(session, lock=True)  # first: whoever holds it appends, the others wait
    rows = session.execute(
        select(PendingEntry.id, PendingEntry.kind, PendingEntry.leaf_input)
        .order_by(PendingEntry.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    tree = _frontier(head)
    entries: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for row in rows:
        hashed = merkle.leaf_hash(row.leaf_input.encode("utf-8"))
        entries.append(
            {
                "leaf_index": tree.size,
                "leaf_input": row.leaf_input,
                "leaf_hash": hashed,
                "kind": row.kind,
                "created_at": now,
            }
        )
        nodes.extend(
            {"level": n.level, "index": n.index, "hash": n.hash} for n in tree.append(hashed)
        )
    session.execute(insert(LogEntry), entries)
    session.execute(insert(LogNode), nodes)
    # Delete exactly the rows appended: a row with a lower id may commit after the SELECT above
    # (its transaction began earlier), and it must stay pending for the next run.
    session.execute(
        delete(PendingEntry).where(PendingEntry.id.in_([row.id for row in rows])),
        execution_options={"synchronize_session": False},
    )
    head.tree_size = tree.size
    head.frontier = tree.to_bytes()
    head.root_hash = tree.root()
    head.updated_at = now
    session.flush()
    return len(rows)


def relay(sessions: sessionmaker[Session], *, now: datetime, batch: int = BATCH) -> int:
    """Append everything pending, `batch` leaves per transaction; return how many."""
    total = 0
    while True:
        with unit_of_work(sessions) as session:
            appended = append_pending(session, now=now, limit=batch)
        total += appended
        if appended < batch:
            return total


def tree_size(session: Session) -> int:
    return _head(session, lock=False).tree_size


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingEntry)) or 0


# -- stored nodes ------------------------------------------------------------------------


def _from_nodes(session: Session, compute: Callable[[NodeLookup], T]) -> T:
    """Run a `merkle.*_from_nodes` computation with the nodes it needs read in one query.

    Which nodes those functions read depends only on the sizes and indexes given, never on
    the hashes, so a first dry run learns the keys and the second run gets the real hashes.
    """
    keys: list[tuple[int, int]] = []

    def probe(level: int, index: int) -> bytes:
        keys.append((level, index))
        return bytes(merkle.HASH_SIZE)

    compute(probe)
    found: dict[tuple[int, int], bytes] = {}
    if keys:
        rows = session.execute(
            select(LogNode.level, LogNode.index, LogNode.hash).where(
                tuple_(LogNode.level, LogNode.index).in_(sorted(set(keys)))
            )
        )
        found = {(level, index): hashed for level, index, hashed in rows}

    def lookup(level: int, index: int) -> bytes:
        hashed = found.get((level, index))
        if hashed is None:
            raise Conflict(
                f"log node ({level}, {index}) is missing: run an audit",
                field="log_nodes",
                rule="log-corrupt",
            )
        return hashed

    return compute(lookup)


# -- signed tree heads -------------------------------------------------------------------


def sign_tree_head(
    session: Session, *, now: datetime, data_dir: Path, key_path: Path | None = None
) -> SignedTreeHead:
    """Sign the current tree (what has been appended; relay first for the pending leaves)."""
    key = signing.log_key(data_dir, key_path=key_path)
    head = _head(session, lock=True)  # STHs are stored in the order of the sizes they sign
    timestamp = signing.timestamp_ms(now)
    last = session.scalar(select(func.max(TreeHead.timestamp)))
    if last is not None and timestamp < last:
        raise Conflict(
            f"now ({timestamp} ms) is before the last tree head's timestamp ({last} ms)",
            field="timestamp",
            rule="monotonic",
        )
    size = head.tree_size
    root = _frontier(head).root()
    stored = _from_nodes(session, lambda node: merkle.root_from_nodes(size, node))
    if root != stored or root != head.root_hash:
        raise Conflict(
            "the head's root does not match the stored nodes: run an audit",
            field="log_head",
            rule="log-corrupt",
        )
    sth = signing.sign_tree_head(key, tree_size=size, root_hash=root, timestamp=timestamp)
    session.add(
        TreeHead(
            tree_size=sth.tree_size,
            root_hash=sth.root_hash,
            timestamp=sth.timestamp,
            key_id=sth.key_id,
            signature=sth.signature,
            created_at=now,
        )
    )
    session.flush()
    return sth


def tree_head_of(row: TreeHead) -> SignedTreeHead:
    return SignedTreeHead(row.tree_size, row.root_hash, row.timestamp, row.key_id, row.signature)


def latest_tree_head(session: Session) -> SignedTreeHead | None:
    row = session.scalar(select(TreeHead).order_by(TreeHead.id.desc()).limit(1))
    return None if row is None else tree_head_of(row)


# -- proofs and entries ------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": signing.b64(self.leaf_hash),
            "audit_path": [signing.b64(h) for h in self.audit_path],
        }


def _check_size(session: Session, value: int, name: str, *, minimum: int) -> int:
    size = tree_size(session)
    if not minimum <= value <= size:
        raise ValidationFailed(name, "range", f"{name} must be in [{minimum}, {size}], got {value}")
    return size


def inclusion_proof(session: Session, *, leaf_hash: bytes, tree_size: int) -> InclusionProof:
    """The audit path of the first leaf with this hash in the tree of `tree_size` leaves."""
    if len(leaf_hash) != merkle.HASH_SIZE:
        raise ValidationFailed("hash", "length", f"hash must be {merkle.HASH_SIZE} bytes")
    _check_size(session, tree_size, "tree_size", minimum=1)
    index = session.scalar(
        select(func.min(LogEntry.leaf_index)).where(
            LogEntry.leaf_hash == leaf_hash, LogEntry.leaf_index < tree_size
        )
    )
    if index is None:
        raise NotFound(_not_found_reason(session, leaf_hash, tree_size), field="hash")
    path = _from_nodes(
        session, lambda node: merkle.inclusion_proof_from_nodes(index, tree_size, node)
    )
    return InclusionProof(index, tree_size, leaf_hash, path)


def _not_found_reason(session: Session, leaf_hash: bytes, size: int) -> str:
    if session.scalar(select(LogEntry.leaf_index).where(LogEntry.leaf_hash == leaf_hash).limit(1)):
        return f"the leaf was appended after tree size {size}"
    if session.scalar(select(PendingEntry.id).where(PendingEntry.leaf_hash == leaf_hash).limit(1)):
        return "the leaf is recorded but not appended yet (relay, then sign a tree head)"
    return "no leaf with this hash is in the log"


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    """RFC 9162 PROOF(first, D[second]); empty when first is 0 or equal to second."""
    _check_size(session, second, "second", minimum=0)
    if not 0 <= first <= second:
        raise ValidationFailed("first", "range", f"first must be in [0, {second}], got {first}")
    if first in (0, second):
        return []
    return _from_nodes(
        session, lambda node: merkle.consistency_proof_from_nodes(first, second, node)
    )


def entries(session: Session, *, start: int, end: int) -> list[LogEntry]:
    """Leaves start..end inclusive (as CT's get-entries), cut to the tree and MAX_ENTRIES."""
    size = tree_size(session)
    if not 0 <= start < size:
        raise ValidationFailed("start", "range", f"start must be in [0, {size}), got {start}")
    if end < start:
        raise ValidationFailed("end", "range", f"end must be >= start ({start}), got {end}")
    last = min(end, size - 1, start + MAX_ENTRIES - 1)
    stmt = (
        select(LogEntry)
        .where(LogEntry.leaf_index.between(start, last))
        .order_by(LogEntry.leaf_index)
    )
    return list(session.scalars(stmt))


def entry_json(entry: LogEntry) -> dict[str, Any]:
    """One entry as served (and as `mobilend log verify --entry` reads it)."""
    return {
        "leaf_index": entry.leaf_index,
        "leaf_input": entry.leaf_input,
        "leaf_hash": signing.b64(entry.leaf_hash),
        "kind": entry.kind,
        "created_at": signing.format_at(entry.created_at, field="created_at"),
    }
