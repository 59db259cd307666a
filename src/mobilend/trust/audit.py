"""Tamper detection: recompute the whole log from its leaf inputs and check what is stored.

Page by page in constant memory: every entry's leaf hash and format, contiguous indexes
(a deleted entry is found), every stored subtree node, the head, and every signed tree head's
root at its size and its signature. Run by `mobilend log audit`, `POST /v1/log/audits` and the
daily close.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from mobilend.core.errors import ValidationFailed
from mobilend.trust import merkle, signing
from mobilend.trust.log import _head, tree_head_of
from mobilend.trust.merkle import CompactTree
from mobilend.trust.models import LogEntry, LogHead, LogNode, TreeHead

AUDIT_PAGE = 2_000  # leaves per audit query
MAX_PROBLEMS = 100  # an audit lists at most this many problems (and counts them all)


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
