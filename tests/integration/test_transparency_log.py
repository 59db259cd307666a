"""The transparency log on SQLite and PostgreSQL: outbox, relay, tree heads, proofs, audit.

Every database here is the test's own (`isolated_db_url`), since the log is one global tree.
Roots and proofs are compared with the RFC 9162 reference functions computed from the leaf
inputs (trust.merkle, checked against the published CT vectors in test_merkle.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.db.session import engine_for, is_postgres
from mobilend.trust import audit as log_audit
from mobilend.trust import log, merkle, signing
from mobilend.trust.models import LogEntry, LogHead, LogNode, PendingEntry, TreeHead
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 15, 4, tzinfo=UTC)
MOBILEND = Path(sys.executable).parent / "mobilend"


@pytest.fixture
def db(isolated_db_url: str) -> Db:
    return Db(isolated_db_url)


def put(session: Session, n: int, *, kind: str = "repayment") -> bytes:
    row = log.record(
        session,
        kind=kind,
        refs={"loan_id": n, "entry_id": f"JE-{n}"},
        digest=merkle.leaf_hash(str(n).encode()),  # any 32 bytes will do
        at=T0 + timedelta(seconds=n),
    )
    return row.leaf_input.encode()


def fill(db: Db, count: int, *, start: int = 0) -> list[bytes]:
    leaves = db(lambda s: [put(s, n) for n in range(start, start + count)])
    log.relay(db.factory, now=T0)
    return leaves


def sign(db: Db, data_dir: Path, now: datetime = T0) -> signing.SignedTreeHead:
    return db(lambda s: log.sign_tree_head(s, now=now, data_dir=data_dir))


def stored_leaves(db: Db) -> list[bytes]:
    rows = db(lambda s: s.execute(select(LogEntry.leaf_input).order_by(LogEntry.leaf_index)))
    return [r.encode() for (r,) in rows]


# -- recording ---------------------------------------------------------------------------


def test_a_record_in_a_rolled_back_transaction_leaves_nothing(db: Db) -> None:
    class Boom(Exception):
        pass

    def record_then_fail(session: Session) -> None:
        put(session, 1)
        assert session.scalar(select(func.count()).select_from(PendingEntry)) == 1
        raise Boom

    with pytest.raises(Boom):
        db(record_then_fail)
    assert db(log.pending_count) == 0
    assert log.relay(db.factory, now=T0) == 0
    assert db(log.tree_size) == 0


def test_a_record_with_personal_data_is_refused_naming_the_field(db: Db) -> None:
    with pytest.raises(ValidationFailed) as caught:
        db(
            lambda s: log.record(
                s, kind="decision", refs={"borrower_id": "王芳"}, digest=bytes(32), at=T0
            )
        )
    assert caught.value.field == "refs.borrower_id"
    assert db(log.pending_count) == 0


def test_the_pending_row_already_knows_its_leaf(db: Db) -> None:
    def go(session: Session) -> tuple[str, bytes]:
        row = log.record(session, kind="disbursement", refs={"loan_id": 9}, digest="ab" * 32, at=T0)
        return row.leaf_input, row.leaf_hash

    fill(db, 1)
    leaf_input, leaf_hash = db(go)
    expected = (
        '{"at":"2025-01-15T04:00:00.000Z","digest":"' + "ab" * 32 + '","kind":"disbursement",'
        '"refs":{"loan_id":9},"v":1}'
    )
    assert leaf_input == expected
    assert leaf_hash == merkle.leaf_hash(expected.encode())
    with pytest.raises(NotFound, match="not appended yet"):
        db(lambda s: log.inclusion_proof(s, leaf_hash=leaf_hash, tree_size=1))
    log.relay(db.factory, now=T0)
    entry = db(lambda s: s.get(LogEntry, 1))
    assert entry is not None and entry.leaf_input == expected and entry.leaf_hash == leaf_hash


# -- appending ---------------------------------------------------------------------------


def test_each_append_keeps_the_root_of_the_reference_tree(db: Db) -> None:
    leaves: list[bytes] = []
    for n in range(1, 101):
        leaves.append(db(lambda s: put(s, n)))
        assert log.relay(db.factory, now=T0) == 1
        head = db(lambda s: s.get(LogHead, 1))
        assert head is not None and head.tree_size == n
        assert head.root_hash == merkle.root_hash(leaves), n
    assert stored_leaves(db) == leaves
    nodes = db(lambda s: s.scalar(select(func.count()).select_from(LogNode)))
    assert nodes == 2 * 100 - 3  # 100 = 0b1100100: 2n - popcount(n)


def test_relay_in_batches_appends_in_id_order(db: Db) -> None:
    leaves = db(lambda s: [put(s, n) for n in range(23)])
    assert log.relay(db.factory, now=T0, batch=5) == 23
    assert stored_leaves(db) == leaves
    assert db(log.pending_count) == 0
    assert db(lambda s: s.get(LogHead, 1)).root_hash == merkle.root_hash(leaves)  # type: ignore[union-attr]


@pytest.fixture
def statements(isolated_db_url: str) -> Iterator[list[str]]:
    seen: list[str] = []
    engine: Engine = engine_for(isolated_db_url)

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", capture)
    yield seen
    event.remove(engine, "before_cursor_execute", capture)


def test_an_append_reads_no_entry_or_node_and_writes_o_log_n_nodes(
    db: Db, statements: list[str]
) -> None:
    def count(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(LogNode)) or 0

    before = 0
    for n in range(1, 130):
        db(lambda s: put(s, n))
        statements.clear()
        log.relay(db.factory, now=T0)
        reads = [q for q in statements if q.upper().startswith("SELECT")]
        assert not [q for q in reads if "log_entries" in q or "log_nodes" in q], reads
        after = db(count)
        written = after - before
        index = n - 1  # appending leaf i completes level 0 and one level per trailing 1 bit
        trailing_ones = len(bin(index)) - len(bin(index).rstrip("1"))
        assert written == trailing_ones + 1
        assert written <= index.bit_length() + 1  # <= log2(n) + 1
        before = after
    # A batch is one read of the head, one of the pending rows, and three bulk writes, however
    # many leaves it holds (executemany may split a large batch into several statements).
    db(lambda s: [put(s, n) for n in range(500)])
    statements.clear()
    log.relay(db.factory, now=T0)
    assert not [q for q in statements if "FROM log_entries" in q or "FROM log_nodes" in q]
    assert len(statements) < 40


def test_relays_racing_never_interleave_or_duplicate(db: Db) -> None:
    per_writer, writers = 40, 4
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for n in range(per_writer):
                db(lambda s: put(s, w * 1000 + n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def relay() -> None:
        try:
            while not done.is_set():
                if log.relay(db.factory, now=T0, batch=3) == 0:
                    time.sleep(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    producers = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    relays = [threading.Thread(target=relay) for _ in range(4)]
    for t in producers + relays:
        t.start()
    for t in producers:
        t.join()
    done.set()
    for t in relays:
        t.join()
    assert not errors, errors
    log.relay(db.factory, now=T0)
    total = per_writer * writers
    indexes = db(
        lambda s: list(s.scalars(select(LogEntry.leaf_index).order_by(LogEntry.leaf_index)))
    )
    assert indexes == list(range(total))  # every index exactly once, no gap
    leaves = stored_leaves(db)
    loan_ids = sorted(json.loads(leaf)["refs"]["loan_id"] for leaf in leaves)
    assert loan_ids == sorted(w * 1000 + n for w in range(writers) for n in range(per_writer))
    head = db(lambda s: s.get(LogHead, 1))
    assert head is not None and head.tree_size == total
    assert head.root_hash == merkle.root_hash(leaves)
    assert db(log.pending_count) == 0


def test_two_relays_on_postgresql_wait_for_each_other(isolated_pg_url: str) -> None:
    """The second relay blocks on the head row until the first commits, then sees its work."""
    db = Db(isolated_pg_url)
    db(lambda s: [put(s, n) for n in range(5)])
    first = db.factory()
    try:
        assert log.append_pending(first, now=T0) == 5  # holds the head lock, not committed
        result: list[int] = []
        second = threading.Thread(target=lambda: result.append(log.relay(db.factory, now=T0)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # waiting for the lock
        first.commit()
    finally:
        first.close()
    second.join(timeout=10)
    assert result == [0]  # the rows it would have taken were gone when it got the lock
    assert db(log.tree_size) == 5


# -- tree heads and proofs ---------------------------------------------------------------


def test_proofs_from_the_database_equal_the_reference_and_verify(db: Db, tmp_path: Path) -> None:
    leaves = fill(db, 100)
    sth = sign(db, tmp_path)
    public = signing.log_key(tmp_path).public_key()
    assert sth.tree_size == 100 and sth.root_hash == merkle.root_hash(leaves)
    assert signing.verify_tree_head(sth, public)
    for size in (1, 2, 3, 7, 8, 64, 65, 99, 100):
        root = merkle.root_hash(leaves[:size])
        for index in range(size):
            proof = db(
                lambda s: log.inclusion_proof(
                    s, leaf_hash=merkle.leaf_hash(leaves[index]), tree_size=size
                )
            )
            assert proof.leaf_index == index
            assert proof.audit_path == merkle.inclusion_proof(leaves, index, size)
            assert merkle.verify_inclusion(leaves[index], index, size, proof.audit_path, root)
    for second in (7, 64, 100):
        for first in range(second + 1):
            got = db(lambda s: log.consistency_proof(s, first=first, second=second))
            if first in (0, second):
                assert got == []
            else:
                assert got == merkle.consistency_proof(leaves, first, second)
            assert merkle.verify_consistency(
                first,
                second,
                merkle.root_hash(leaves[:first]),
                merkle.root_hash(leaves[:second]),
                got,
            )


def test_proof_and_entry_arguments_are_checked(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    leaves = fill(db, 10)
    h = merkle.leaf_hash(leaves[3])
    cases = [
        (lambda s: log.inclusion_proof(s, leaf_hash=h, tree_size=0), "tree_size"),
        (lambda s: log.inclusion_proof(s, leaf_hash=h, tree_size=11), "tree_size"),
        (lambda s: log.inclusion_proof(s, leaf_hash=b"x", tree_size=5), "hash"),
        (lambda s: log.consistency_proof(s, first=4, second=11), "second"),
        (lambda s: log.consistency_proof(s, first=5, second=4), "first"),
        (lambda s: log.entries(s, start=10, end=12), "start"),
        (lambda s: log.entries(s, start=-1, end=2), "start"),
        (lambda s: log.entries(s, start=5, end=4), "end"),
    ]
    for call, field in cases:
        with pytest.raises(ValidationFailed) as caught:
            db(call)
        assert caught.value.field == field
    with pytest.raises(NotFound, match="after tree size 3"):
        db(lambda s: log.inclusion_proof(s, leaf_hash=h, tree_size=3))
    with pytest.raises(NotFound, match="no leaf"):
        db(lambda s: log.inclusion_proof(s, leaf_hash=bytes(32), tree_size=10))
    got = db(lambda s: [e.leaf_index for e in log.entries(s, start=8, end=50)])
    assert got == [8, 9]  # cut at the end of the tree
    monkeypatch.setattr(log, "MAX_ENTRIES", 4)
    got = db(lambda s: [e.leaf_index for e in log.entries(s, start=2, end=9)])
    assert got == [2, 3, 4, 5]  # cut at MAX_ENTRIES, as CT's get-entries


def test_tree_heads_are_kept_in_order_and_time_never_goes_back(db: Db, tmp_path: Path) -> None:
    empty = sign(db, tmp_path)
    assert (empty.tree_size, empty.root_hash) == (0, merkle.EMPTY_ROOT)
    fill(db, 3)
    later = sign(db, tmp_path, T0 + timedelta(minutes=1))
    assert later.timestamp == signing.timestamp_ms(T0) + 60_000
    again = sign(db, tmp_path, T0 + timedelta(minutes=1))  # same time: allowed
    assert db(log.latest_tree_head) == again
    with pytest.raises(Conflict) as caught:
        sign(db, tmp_path, T0)
    assert caught.value.field == "timestamp"
    assert db(lambda s: s.scalar(select(func.count()).select_from(TreeHead))) == 3
    assert db(lambda s: log_audit.audit(s, data_dir=tmp_path)).ok


# -- tamper detection --------------------------------------------------------------------


def tamper(db: Db, sql: str, **params: object) -> None:
    """Run SQL as an attacker with the database's own rights: past the append-only triggers."""
    with db.factory() as session:
        if is_postgres(session):
            session.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for table in ("log_entries", "log_nodes", "log_tree_heads"):
                for op in ("update", "delete"):
                    session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))
        session.execute(text(sql), params)
        session.commit()


@pytest.fixture
def signed_log(db: Db, tmp_path: Path) -> tuple[list[bytes], Path]:
    leaves = fill(db, 10)
    sign(db, tmp_path)
    fill(db, 10, start=10)
    sign(db, tmp_path, T0 + timedelta(minutes=1))
    report = db(lambda s: log_audit.audit(s, data_dir=tmp_path, page=3))
    assert report.ok, report.to_json()
    assert (report.entries_checked, report.nodes_checked, report.tree_heads_checked) == (
        20,
        2 * 20 - 2,  # 20 = 0b10100
        2,
    )
    return leaves + stored_leaves(db)[10:], tmp_path


def test_the_stored_log_is_append_only(db: Db, signed_log: Any) -> None:
    for sql in (
        "UPDATE log_entries SET kind = 'decision' WHERE leaf_index = 1",
        "DELETE FROM log_entries WHERE leaf_index = 19",
        "UPDATE log_nodes SET hash = hash WHERE level = 0",
        "DELETE FROM log_tree_heads",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db(lambda s: s.execute(text(sql)))


def audit(db: Db, data_dir: Path) -> dict[str, Any]:
    report = db(lambda s: log_audit.audit(s, data_dir=data_dir, page=3)).to_json()
    assert not report["ok"]
    return report


def checks(report: dict[str, Any]) -> set[str]:
    return {p["check"] for p in report["problems"]}


def test_audit_finds_a_changed_leaf_input(db: Db, signed_log: Any) -> None:
    leaves, data_dir = signed_log
    forged = leaves[5].decode().replace('"loan_id":5', '"loan_id":6')
    tamper(db, "UPDATE log_entries SET leaf_input = :forged WHERE leaf_index = 5", forged=forged)
    report = audit(db, data_dir)
    assert report["first_bad_index"] == 5
    assert report["first_bad_tree_size"] == 10  # both heads cover leaf 5
    assert {"leaf-hash", "node-hash", "tree-head-root"} <= checks(report)


def test_audit_finds_a_changed_leaf_with_its_hash(db: Db, signed_log: Any) -> None:
    leaves, data_dir = signed_log
    forged = leaves[12].decode().replace('"loan_id":12', '"loan_id":13')
    sql = "UPDATE log_entries SET leaf_input = :forged, leaf_hash = :hashed WHERE leaf_index = 12"
    tamper(db, sql, forged=forged, hashed=merkle.leaf_hash(forged.encode()))
    report = audit(db, data_dir)
    assert report["first_bad_index"] == 12
    assert report["first_bad_tree_size"] == 20  # the first head (10 leaves) is still right
    assert "node-hash" in checks(report) and "leaf-hash" not in checks(report)


def test_audit_finds_a_deleted_entry(db: Db, signed_log: Any) -> None:
    _, data_dir = signed_log
    tamper(db, "DELETE FROM log_entries WHERE leaf_index = 7")
    report = audit(db, data_dir)
    assert report["first_bad_index"] == 7
    assert checks(report) == {"entry-missing"}  # the rest still rebuilds from node (0, 7)
    tamper(db, 'DELETE FROM log_nodes WHERE level = 0 AND "index" = 7')
    report = audit(db, data_dir)
    assert report["first_bad_index"] == 7
    assert {"entry-missing", "rebuild-stopped", "node-count"} <= checks(report)


def test_audit_finds_a_changed_node(db: Db, signed_log: Any) -> None:
    _, data_dir = signed_log
    tamper(
        db, 'UPDATE log_nodes SET hash = :zeros WHERE level = 2 AND "index" = 1', zeros=bytes(32)
    )
    report = audit(db, data_dir)
    # Node (2, 1) covers leaves 4..7; trees of up to 7 leaves do not use it.
    assert report["first_bad_index"] == 7
    assert checks(report) == {"node-hash"}
    leaves, sth = stored_leaves(db), db(log.latest_tree_head)
    assert sth is not None
    proof = db(
        lambda s: log.inclusion_proof(s, leaf_hash=merkle.leaf_hash(leaves[0]), tree_size=20)
    )
    assert not merkle.verify_inclusion(leaves[0], 0, 20, proof.audit_path, sth.root_hash)
    # The root of 20 leaves is H((4, 0), (2, 4)): with one of those changed, no tree head.
    sql = 'UPDATE log_nodes SET hash = :zeros WHERE level = 2 AND "index" = 4'
    tamper(db, sql, zeros=bytes(32))
    with pytest.raises(Conflict) as caught:
        db(lambda s: log.sign_tree_head(s, now=T0 + timedelta(hours=1), data_dir=data_dir))
    assert caught.value.rule == "log-corrupt"


def test_audit_finds_forged_tree_heads(db: Db, signed_log: Any) -> None:
    leaves, data_dir = signed_log
    other = signing.sign_tree_head(
        signing.log_key(data_dir / "elsewhere"),
        tree_size=15,
        root_hash=merkle.root_hash(leaves[:15]),
        timestamp=signing.timestamp_ms(T0) + 120_000,
    )
    db(
        lambda s: s.add(
            TreeHead(
                tree_size=15,
                root_hash=other.root_hash,
                timestamp=other.timestamp,
                key_id=signing.key_id_of(signing.log_key(data_dir)),  # claims to be ours
                signature=other.signature,
                created_at=T0,
            )
        )
    )
    report = audit(db, data_dir)
    assert checks(report) == {"tree-head-signature", "tree-head-order"}  # 15 after 20
    assert report["first_bad_tree_size"] == 15
    sql = "UPDATE log_tree_heads SET root_hash = :zeros WHERE tree_size = 10"
    tamper(db, sql, zeros=bytes(32))
    report = audit(db, data_dir)
    assert {"tree-head-root", "tree-head-signature"} <= checks(report)
    assert report["first_bad_tree_size"] == 10


def test_audit_finds_a_tree_head_beyond_the_log(db: Db, signed_log: Any) -> None:
    _, data_dir = signed_log
    key = signing.log_key(data_dir)
    sth = signing.sign_tree_head(key, tree_size=25, root_hash=bytes(32), timestamp=2**41)
    row = TreeHead(
        tree_size=25,
        root_hash=sth.root_hash,
        timestamp=sth.timestamp,
        key_id=sth.key_id,
        signature=sth.signature,
        created_at=T0,
    )
    db(lambda s: s.add(row))
    report = audit(db, data_dir)
    assert "tree-head-beyond-log" in checks(report)
    assert report["first_bad_tree_size"] == 25


# -- offline verification of what the database serves ------------------------------------


def download(db: Db, data_dir: Path, index: int, out: Path) -> dict[str, Path]:
    """Write the files as the API serves them (the same functions shape both)."""
    sth = db(log.latest_tree_head)
    assert sth is not None
    entry = db(lambda s: log.entry_json(log.entries(s, start=index, end=index)[0]))
    proof = db(
        lambda s: log.inclusion_proof(
            s, leaf_hash=signing.unb64(entry["leaf_hash"], field="h"), tree_size=sth.tree_size
        ).to_json()
    )
    files = {
        "entry": (out / "entry.json", entry),
        "proof": (out / "proof.json", proof),
        "sth": (out / "sth.json", sth.to_json()),
    }
    for path, body in files.values():
        path.write_text(json.dumps(body))
    key = out / "key.txt"
    key.write_text(signing.public_key_json(signing.log_key(data_dir))["public_key"] + "\n")
    return {name: path for name, (path, _) in files.items()} | {"public-key": key}


def verify(files: dict[str, Path]) -> tuple[int, dict[str, Any]]:
    args = [str(MOBILEND), "log", "verify"]
    for name, path in files.items():
        args += [f"--{name}", str(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout)


def test_verify_accepts_a_true_entry_and_refuses_a_tampered_one(
    db: Db, signed_log: Any, tmp_path: Path
) -> None:
    _, data_dir = signed_log
    files = download(db, data_dir, 6, tmp_path)
    code, verdict = verify(files)
    assert (code, verdict["ok"], verdict["leaf_index"], verdict["tree_size"]) == (0, True, 6, 20)
    assert verdict["leaf"]["refs"] == {"entry_id": "JE-6", "loan_id": 6}

    entry = json.loads(files["entry"].read_text())
    forged = entry["leaf_input"].replace('"loan_id":6', '"loan_id":7')
    files["entry"].write_text(json.dumps({**entry, "leaf_input": forged}))
    code, verdict = verify(files)
    assert (code, verdict["ok"], verdict["failed"]) == (1, False, "leaf-hash")

    # With its leaf hash made to match, the forged leaf is not in the signed tree.
    forged_hash = signing.b64(merkle.leaf_hash(forged.encode()))
    files["entry"].write_text(json.dumps({**entry, "leaf_input": forged, "leaf_hash": forged_hash}))
    proof = json.loads(files["proof"].read_text())
    files["proof"].write_text(json.dumps({**proof, "leaf_hash": forged_hash}))
    code, verdict = verify(files)
    assert (code, verdict["failed"]) == (1, "inclusion-proof")


def test_verify_refuses_a_forged_tree_head_and_a_wrong_key(
    db: Db, signed_log: Any, tmp_path: Path
) -> None:
    _, data_dir = signed_log
    files = download(db, data_dir, 0, tmp_path)
    sth = json.loads(files["sth"].read_text())
    files["sth"].write_text(json.dumps({**sth, "timestamp": sth["timestamp"] + 1}))
    code, verdict = verify(files)
    assert (code, verdict["failed"]) == (1, "sth-signature")
    files["sth"].write_text(json.dumps(sth))
    files["public-key"].write_text(
        signing.public_key_json(signing.log_key(tmp_path / "other"))["pem"]
    )
    code, verdict = verify(files)
    assert (code, verdict["failed"]) == (1, "sth-key-id")
    files["public-key"].write_text("{not json")
    code, verdict = verify(files)
    assert (code, verdict["failed"]) == (1, "public-key")
    files["entry"].unlink()
    code, verdict = verify(files)
    assert (code, verdict["failed"]) == (2, "input")


def test_the_offline_verifier_imports_no_database_code() -> None:
    code = (
        "import sys, mobilend.trust.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'fastapi', 'psycopg')"
        " or m in ('mobilend.db', 'mobilend.settings')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
