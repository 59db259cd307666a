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
- `audit` recomputes everything from the leaf inputs, page by page in constant memory.

No function reads a clock or commits. See docs/transparency-log.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_
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
AUDIT_PAGE = 2_000  # leaves per audit query
MAX_PROBLEMS = 100  # an audit lists at most this many problems (and counts them all)
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


# -- audit -------------------------------------------------------------------------------


@dataclass
class AuditProblem:
    check: str
    detail: str
    leaf_index: int | None = None
    tree_size: int | None = None


@dataclass
class AuditReport:
    tree_size: int = 0
    key_id: str = ""
    entries_checked: int = 0
    nodes_checked: int = 0
    tree_heads_checked: int = 0
    problem_count: int = 0
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_index(self) -> int | None:
        found = [p.leaf_index for p in self.problems if p.leaf_index is not None]
        return min(found) if found else None

    @property
    def first_bad_tree_size(self) -> int | None:
        found = [p.tree_size for p in self.problems if p.tree_size is not None]
        return min(found) if found else None

    def add(self, check: str, detail: str, **where: int | None) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(AuditProblem(check, detail, **where))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "key_id": self.key_id,
            "entries_checked": self.entries_checked,
            "nodes_checked": self.nodes_checked,
            "tree_heads_checked": self.tree_heads_checked,
            "first_bad_index": self.first_bad_index,
            "first_bad_tree_size": self.first_bad_tree_size,
            "problem_count": self.problem_count,
            "problems": [asdict(p) for p in self.problems],
        }


def audit(
    session: Session, *, data_dir: Path, key_path: Path | None = None, page: int = AUDIT_PAGE
) -> AuditReport:
    """Recompute the log from its leaf inputs and compare everything stored with it.

    Checks, in one pass over the leaves in index order (`page` at a time, so memory stays
    constant): every index 0..n-1 has an entry (a gap is a deleted entry); each entry's input is
    a canonical v1 leaf of its kind and hashes to its stored leaf hash; the tree rebuilt with
    `CompactTree` from those inputs gives exactly the stored nodes; every signed tree head has
    the rebuilt root at its size and a valid signature by the log key. Then: no entry or node
    beyond the tree, the head's frontier and root, and tree heads in order.
    """
    key = signing.log_key(data_dir, key_path=key_path)
    public = key.public_key()
    head = _head(session, lock=False)
    size = head.tree_size
    max_sth = session.scalar(select(func.max(TreeHead.id))) or 0
    report = AuditReport(tree_size=size, key_id=signing.key_id_of(key))
    heads = _tree_heads(session, max_sth)
    pending_head = next(heads, None)
    tree: CompactTree | None = CompactTree()

    def check_heads() -> None:
        nonlocal pending_head
        while pending_head is not None and tree is not None and pending_head.tree_size == tree.size:
            _check_tree_head(report, pending_head, tree.root(), public)
            pending_head = next(heads, None)

    check_heads()  # the tree heads of size 0
    for start in range(0, size, page):
        stop = min(start + page, size)
        stored = _entries_page(session, start, stop)
        nodes = _nodes_page(session, start, stop, size)
        report.nodes_checked += len(nodes)
        report.entries_checked += len(stored)
        for index in range(start, stop):
            hashed = _check_entry(report, index, stored.get(index), nodes)
            if tree is None:
                continue
            if hashed is None:
                tree = None  # the rest of the tree cannot be rebuilt
                continue
            for node in tree.append(hashed):
                _check_node(report, node, nodes.get((node.level, node.index)))
            check_heads()
    _check_tail(session, report, size, tree, head)
    while pending_head is not None:  # tree heads of sizes the rebuilt tree did not reach
        if pending_head.tree_size > size:
            report.add(
                "tree-head-beyond-log",
                f"a tree head signs {pending_head.tree_size} leaves; the log has {size}",
                tree_size=pending_head.tree_size,
            )
        _check_signature(report, pending_head, public)
        pending_head = next(heads, None)
    _check_order(session, report, max_sth)
    return report


def _tree_heads(session: Session, max_id: int) -> Iterator[TreeHead]:
    """Tree heads with id <= max_id, by size then id, a page at a time."""
    last: tuple[int, int] = (-1, 0)
    while True:
        page = list(
            session.scalars(
                select(TreeHead)
                .where(
                    TreeHead.id <= max_id,
                    or_(
                        TreeHead.tree_size > last[0],
                        and_(TreeHead.tree_size == last[0], TreeHead.id > last[1]),
                    ),
                )
                .order_by(TreeHead.tree_size, TreeHead.id)
                .limit(500)
            )
        )
        if not page:
            return
        for row in page:
            session.expunge(row)
            yield row
        last = (page[-1].tree_size, page[-1].id)


def _entries_page(session: Session, start: int, stop: int) -> dict[int, Any]:
    rows = session.execute(
        select(LogEntry.leaf_index, LogEntry.leaf_input, LogEntry.leaf_hash, LogEntry.kind).where(
            LogEntry.leaf_index >= start, LogEntry.leaf_index < stop
        )
    )
    return {row.leaf_index: row for row in rows}


def _nodes_page(session: Session, start: int, stop: int, size: int) -> dict[tuple[int, int], bytes]:
    """The stored nodes that leaves start..stop-1 complete: (level, j) is completed by leaf
    (j + 1) * 2**level - 1, so per level j runs from ceil((start+1) / 2**level) - 1 to
    stop // 2**level - 1; one index range scan per level."""
    ranges = []
    for level in range(size.bit_length()):
        low = ((start + 1 + (1 << level) - 1) >> level) - 1
        high = (stop >> level) - 1
        if low <= high:
            ranges.append(and_(LogNode.level == level, LogNode.index.between(low, high)))
    if not ranges:
        return {}
    rows = session.execute(select(LogNode.level, LogNode.index, LogNode.hash).where(or_(*ranges)))
    return {(level, index): hashed for level, index, hashed in rows}


def _check_entry(
    report: AuditReport, index: int, row: Any, nodes: Mapping[tuple[int, int], bytes]
) -> bytes | None:
    """The leaf hash to rebuild with: recomputed from the input, or for a missing entry the
    stored leaf node (None when that is gone too)."""
    if row is None:
        report.add("entry-missing", f"no entry at leaf index {index}", leaf_index=index)
        return nodes.get((0, index))
    data = row.leaf_input.encode("utf-8")
    hashed = merkle.leaf_hash(data)
    if hashed != row.leaf_hash:
        detail = f"leaf {index}: its input does not hash to its leaf_hash"
        report.add("leaf-hash", detail, leaf_index=index)
    try:
        leaf = signing.parse_leaf(data)
    except ValidationFailed as exc:
        report.add("leaf-format", f"leaf {index}: {exc.detail}", leaf_index=index)
    else:
        if leaf.kind != row.kind:
            detail = f"leaf {index}: kind column {row.kind!r}, input {leaf.kind!r}"
            report.add("leaf-kind", detail, leaf_index=index)
    return hashed


def _check_node(report: AuditReport, node: merkle.Node, stored: bytes | None) -> None:
    # Reported at the leaf whose append completes the node: trees of fewer leaves never use it.
    name = f"node ({node.level}, {node.index})"
    completed_by = ((node.index + 1) << node.level) - 1
    if stored is None:
        report.add("node-missing", f"{name} is missing", leaf_index=completed_by)
    elif stored != node.hash:
        report.add("node-hash", f"{name} differs from the rebuilt tree", leaf_index=completed_by)


def _check_tree_head(report: AuditReport, row: TreeHead, root: bytes, public: Any) -> None:
    if row.root_hash != root:
        detail = f"tree head {row.id}: its root differs from the log's at size {row.tree_size}"
        report.add("tree-head-root", detail, tree_size=row.tree_size)
    _check_signature(report, row, public)


def _check_signature(report: AuditReport, row: TreeHead, public: Any) -> None:
    report.tree_heads_checked += 1
    if not signing.verify_tree_head(tree_head_of(row), public):
        detail = f"tree head {row.id}: its signature does not verify with the log key"
        report.add("tree-head-signature", detail, tree_size=row.tree_size)


def _check_tail(
    session: Session, report: AuditReport, size: int, tree: CompactTree | None, head: LogHead
) -> None:
    extra = session.scalar(select(func.min(LogEntry.leaf_index)).where(LogEntry.leaf_index >= size))
    if extra is not None:
        report.add("entry-extra", f"entry {extra} is beyond the tree size {size}", leaf_index=extra)
    nodes = session.scalar(select(func.count()).select_from(LogNode)) or 0
    expected = 2 * size - size.bit_count()
    if nodes != expected:
        report.add("node-count", f"{nodes} nodes stored; a tree of {size} leaves has {expected}")
    if tree is None:
        detail = "a leaf and its node are both gone: later nodes and tree heads were not checked"
        report.add("rebuild-stopped", detail)
    elif head.frontier != tree.to_bytes() or head.root_hash != tree.root():
        detail = "the log head's frontier or root differs from the rebuilt tree"
        report.add("head", detail, tree_size=size)


def _check_order(session: Session, report: AuditReport, max_id: int) -> None:
    """Tree heads in id order never shrink the tree nor go back in time."""
    previous = (
        select(
            TreeHead.id,
            TreeHead.tree_size,
            TreeHead.timestamp,
            func.lag(TreeHead.tree_size).over(order_by=TreeHead.id).label("prev_size"),
            func.lag(TreeHead.timestamp).over(order_by=TreeHead.id).label("prev_time"),
        )
        .where(TreeHead.id <= max_id)
        .subquery()
    )
    row = session.execute(
        select(previous)
        .where(
            or_(
                previous.c.tree_size < previous.c.prev_size,
                previous.c.timestamp < previous.c.prev_time,
            )
        )
        .order_by(previous.c.id)
        .limit(1)
    ).first()
    if row is not None:
        detail = f"tree head {row.id} shrinks the tree or goes back in time"
        report.add("tree-head-order", detail, tree_size=row.tree_size)
