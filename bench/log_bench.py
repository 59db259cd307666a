"""The transparency log at scale: record, append, sign, prove and audit (PostgreSQL or SQLite).

On a scratch database (PostgreSQL by default, `--backend sqlite` for a temporary file),
migrated with Alembic:

1. record: `--entries` pending leaves through `log.record`, `--record-batch` per unit of work
   (as services do: kinds repayment / disbursement / decision, refs of ids, digest = SHA-256 of
   the record number, one second apart);
2. append: `log.append_pending` in `--batch`-leaf transactions (what `log.relay` loops), timed
   per slice of `--slice` leaves with the process RSS (psutil) after each slice, to show that
   appends do not slow down as the tree grows and that memory per append is constant (the
   relay keeps only the O(log n) frontier, never the tree); then `log.relay` finds nothing
   left. The node rows written are counted (a tree of n leaves has 2n - popcount(n));
3. a reference pass outside the database: the leaf inputs regenerated and folded into a
   `merkle.CompactTree`, giving the roots at the sizes the consistency proofs start from and
   the final root (it must equal the signed one);
4. at full size: `log.sign_tree_head`; `--proofs` inclusion proofs (`log.inclusion_proof` by
   leaf hash, each in its own unit of work, like a request) verified with
   `merkle.verify_inclusion_hash` against the STH root (on PostgreSQL a second round after an
   explicit ANALYZE, since the plan depends on statistics); `--proofs` consistency proofs from
   random sizes to the full size verified with `merkle.verify_consistency`; `audit.audit` over
   the whole log (seconds, RSS growth and peak).

`--explain` (PostgreSQL) captures the SQL of one append batch (at half size), one inclusion
proof and one consistency proof and prints EXPLAIN (ANALYZE, BUFFERS) of their SELECTs.
Targets from the issue: appends per second and proof time at 1,000,000 entries; memory per
append constant (no whole-tree rebuild). The scratch database is dropped, even on error.

    .venv/bin/python bench/log_bench.py [--entries 1000000] [--backend postgres] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import psutil
from common import fmt_int, machine_lines, percentile, table, write_section
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from mobilend.db.migrate import upgrade
from mobilend.db.session import build_engine, session_factory, unit_of_work
from mobilend.trust import audit, log, merkle, signing

MB = 1024 * 1024
FLAT_TOLERANCE_MB = 4.0  # RSS growth allowed from the end of slice 2 to the last slice
SLOWDOWN_TOLERANCE = 0.8  # the last slice's rate must be at least this share of slice 2's
PROOF_SLOW_MS = 50.0  # a proof slower than this at p99 is worth a query plan
TRY_INDEX = "bench_log_entries_hash_index"
STH_COUNT = 5  # tree heads signed at full size (timed one by one)
BASE_AT = datetime(2025, 6, 30, 0, 0, tzinfo=UTC)  # leaf i happened BASE_AT + i seconds


# ---------------------------------------------------------------- the leaves


def leaf(i: int) -> dict[str, Any]:
    """Leaf number i, like the ones services record: ids in refs, a record's SHA-256."""
    digest = hashlib.sha256(str(i).encode()).digest()
    at = BASE_AT + timedelta(seconds=i)
    bucket = i % 10
    if bucket == 9:
        return {
            "kind": "decision",
            "refs": {"application_id": i // 10 + 1, "decision_id": i + 1},
            "digest": digest,
            "at": at,
        }
    kind = "disbursement" if bucket == 8 else "repayment"
    return {
        "kind": kind,
        "refs": {"loan_id": i // 24 + 1, "entry_id": i + 1},
        "digest": digest,
        "at": at,
    }


def leaf_hash_of(i: int) -> bytes:
    return merkle.leaf_hash(signing.leaf_input(**leaf(i)))


# ---------------------------------------------------------------- memory


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


class PeakRss:
    """Samples this process's RSS every `interval` seconds on a thread; keeps the maximum."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, proc.memory_info().rss / MB)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


# ---------------------------------------------------------------- results


@dataclass
class Slice:
    size: int  # tree size at the end of the slice
    leaves: int
    seconds: float
    max_batch_ms: float
    rss_mb: float
    batches: int = 0
    parts: Counter[str] = field(default_factory=Counter)  # seconds per statement kind, etc.
    load: float = 0.0  # 1-minute load average at the end of the slice

    def per_batch_ms(self, part: str) -> float:
        return self.parts[part] / max(1, self.batches) * 1e3

    @property
    def rate(self) -> float:
        return self.leaves / self.seconds if self.seconds else 0.0


@dataclass
class ProofRound:
    label: str
    ms: list[float] = field(default_factory=list)
    ok: int = 0
    path_len: float = 0.0


@dataclass
class Result:
    backend: str
    entries: int
    record_seconds: float = 0.0
    record_rss_mb: float = 0.0
    append_seconds: float = 0.0
    append_batches: int = 0
    append_peak_mb: float = 0.0
    rss_before_append_mb: float = 0.0
    relay_leftover: int = -1
    slices: list[Slice] = field(default_factory=list)
    nodes: int = 0
    nodes_expected: int = 0
    pending_left: int = -1
    sizes: dict[str, str] = field(default_factory=dict)
    reference_seconds: float = 0.0
    reference_root_ok: bool = False
    sth_ms: list[float] = field(default_factory=list)
    sth_size: int = 0
    stats_before: str = ""
    inclusion: list[ProofRound] = field(default_factory=list)
    consistency_ms: list[float] = field(default_factory=list)
    consistency_ok: int = 0
    consistency_path_len: float = 0.0
    audit_seconds: float = 0.0
    audit_ok: bool = False
    audit_problems: int = 0
    audit_entries: int = 0
    audit_nodes: int = 0
    audit_heads: int = 0
    audit_rss_before_mb: float = 0.0
    audit_rss_after_mb: float = 0.0
    audit_peak_mb: float = 0.0
    explains: list[tuple[str, str, str]] = field(default_factory=list)  # (what, sql, plan)

    @property
    def record_rate(self) -> float:
        return self.entries / self.record_seconds if self.record_seconds else 0.0

    @property
    def append_rate(self) -> float:
        return self.entries / self.append_seconds if self.append_seconds else 0.0


# ---------------------------------------------------------------- scratch databases


@contextlib.contextmanager
def scratch_sqlite() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="mobilend-logbench-"))
    path = workdir / "bench.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                (workdir / f"bench.db{suffix}").unlink()
        with contextlib.suppress(OSError):
            workdir.rmdir()


def scratch_postgres(admin_url: str) -> contextlib.AbstractContextManager[str]:
    return common.scratch_postgres(
        admin_url, prefix="mobilend_logbench", log=lambda m: print(f"[postgres] {m}", flush=True)
    )


# ---------------------------------------------------------------- statements and plans


@contextlib.contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) the engine sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not many:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def explain(
    engine: Engine, what: str, statements: list[tuple[str, Any]]
) -> list[tuple[str, str, str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SELECTs captured, each in a rolled-back transaction."""
    plans = []
    for statement, params in statements:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plan = "\n".join(row[0] for row in rows)
            conn.rollback()
        plans.append((what, statement, plan))
    return plans


STATEMENT = re.compile(r"^\s*(\w+).*?\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.DOTALL | re.IGNORECASE)
PARTS = (
    "SELECT log_pending",
    "INSERT log_entries",
    "INSERT log_nodes",
    "DELETE log_pending",
    "other SQL",
    "commit",
    "Python",
)


class StatementTimer:
    """Seconds spent in the driver per kind of statement ("INSERT log_nodes") while enabled."""

    def __init__(self, engine: Engine) -> None:
        self.parts: Counter[str] = Counter()
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        match = STATEMENT.match(statement)
        name = f"{match.group(1).upper()} {match.group(2)}" if match else "other SQL"
        self.parts[name if name in PARTS else "other SQL"] += elapsed


# ---------------------------------------------------------------- phases


def record_all(sessions: sessionmaker[Session], args: argparse.Namespace, result: Result) -> None:
    n = args.entries
    t0 = time.perf_counter()
    last_print = t0
    for lo in range(0, n, args.record_batch):
        with unit_of_work(sessions) as session:
            for i in range(lo, min(n, lo + args.record_batch)):
                log.record(session, **leaf(i))
        now = time.perf_counter()
        if now - last_print > 30 or lo + args.record_batch >= n:
            done = min(n, lo + args.record_batch)
            print(
                f"[{result.backend}] recorded {done:>9,}  {done / (now - t0):7,.0f}/s  "
                f"rss {rss_mb():6.1f} MB",
                flush=True,
            )
            last_print = now
    result.record_seconds = time.perf_counter() - t0
    result.record_rss_mb = rss_mb()


def append_all(
    engine: Engine, sessions: sessionmaker[Session], args: argparse.Namespace, result: Result
) -> None:
    n = args.entries
    now = BASE_AT + timedelta(seconds=n)
    result.rss_before_append_mb = rss_mb()
    appended = 0
    slice_start, slice_time, slice_max = 0, 0.0, 0.0
    explain_at = n // 2 if args.explain and result.backend == "postgres" else -1
    timer = StatementTimer(engine)
    parts: Counter[str] = Counter()
    batches = 0
    try:
        with PeakRss() as peak:
            while True:
                statements: contextlib.AbstractContextManager[Any] = (
                    captured(engine)
                    if explain_at >= 0 and appended >= explain_at
                    else contextlib.nullcontext()
                )
                with statements as seen:
                    timer.parts.clear()
                    t0 = time.perf_counter()
                    with unit_of_work(sessions) as session:
                        count = log.append_pending(session, now=now, limit=args.batch)
                        body = time.perf_counter() - t0
                    elapsed = time.perf_counter() - t0
                if seen is not None:
                    result.explains += explain(engine, f"append_pending at {appended:,}", seen)
                    explain_at = -1
                if count == 0:
                    break
                appended += count
                batches += 1
                result.append_batches += 1
                result.append_seconds += elapsed
                slice_time += elapsed
                slice_max = max(slice_max, elapsed)
                parts.update(timer.parts)
                parts["commit"] += elapsed - body
                parts["Python"] += body - sum(timer.parts.values())
                if appended - slice_start >= args.slice or appended >= n:
                    part = Slice(
                        appended,
                        appended - slice_start,
                        slice_time,
                        slice_max * 1e3,
                        rss_mb(),
                        batches,
                        parts,
                        os.getloadavg()[0],
                    )
                    result.slices.append(part)
                    print(
                        f"[{result.backend}] appended {appended:>9,}  {part.rate:7,.0f}/s  "
                        f"max batch {part.max_batch_ms:6.0f} ms  rss {part.rss_mb:6.1f} MB  "
                        f"load {part.load:.1f}  ms/batch: "
                        + ", ".join(f"{k} {part.per_batch_ms(k):.0f}" for k in PARTS),
                        flush=True,
                    )
                    slice_start, slice_time, slice_max = appended, 0.0, 0.0
                    parts, batches = Counter(), 0
                if count < args.batch:
                    break
    finally:
        timer.close()
    result.append_peak_mb = peak.peak
    result.relay_leftover = log.relay(sessions, now=now, batch=args.batch)


def count_rows(engine: Engine, result: Result) -> None:
    with engine.connect() as conn:
        result.nodes = conn.execute(text("SELECT count(*) FROM log_nodes")).scalar_one()
        result.pending_left = conn.execute(text("SELECT count(*) FROM log_pending")).scalar_one()
        if result.backend == "postgres":
            for name in ("log_entries", "log_nodes", "log_pending"):
                result.sizes[name] = conn.execute(
                    text(f"SELECT pg_size_pretty(pg_total_relation_size('{name}'))")
                ).scalar_one()
            result.sizes["database"] = conn.execute(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar_one()
    n = result.entries
    result.nodes_expected = 2 * n - n.bit_count()


def table_stats(engine: Engine, backend: str) -> str:
    """Whether PostgreSQL has planner statistics for the log tables (autovacuum's ANALYZE)."""
    if backend != "postgres":
        return ""
    with engine.connect() as conn:
        autovacuum = conn.execute(text("SHOW autovacuum")).scalar_one()
        rows = conn.execute(
            text(
                "SELECT relname, n_live_tup, n_mod_since_analyze,"
                " greatest(last_analyze, last_autoanalyze) IS NOT NULL"
                " FROM pg_stat_user_tables WHERE relname IN ('log_entries', 'log_nodes')"
                " ORDER BY relname"
            )
        ).all()
    return f"autovacuum {autovacuum}; " + "; ".join(
        f"{name}: {'analyzed' if analyzed else 'never analyzed'}, "
        f"{fmt_int(changed)} rows changed since"
        for name, _live, changed, analyzed in rows
    )


def reference_roots(n: int, sizes: list[int], result: Result) -> dict[int, bytes]:
    """Roots at `sizes` (and n) from the regenerated leaf inputs, without the database."""
    wanted = sorted(set(sizes) | {n})
    roots: dict[int, bytes] = {}
    tree = merkle.CompactTree()
    t0 = time.perf_counter()
    position = 0
    for i in range(n):
        tree.append(leaf_hash_of(i))
        while position < len(wanted) and wanted[position] == tree.size:
            roots[tree.size] = tree.root()
            position += 1
    result.reference_seconds = time.perf_counter() - t0
    return roots


def prove(
    engine: Engine,
    sessions: sessionmaker[Session],
    args: argparse.Namespace,
    result: Result,
    data_dir: Path,
) -> None:
    n = args.entries
    rng = random.Random(args.seed)
    firsts = [rng.randint(1, n - 1) for _ in range(args.proofs)] if n > 1 else []
    print(f"[{result.backend}] reference roots from the leaf inputs ...", flush=True)
    roots = reference_roots(n, firsts, result)

    for k in range(STH_COUNT):  # the first makes the key file; the median is the steady cost
        t0 = time.perf_counter()
        with unit_of_work(sessions) as session:
            sth = log.sign_tree_head(
                session, now=BASE_AT + timedelta(seconds=n + 1 + k), data_dir=data_dir
            )
        result.sth_ms.append((time.perf_counter() - t0) * 1e3)
    result.sth_size = sth.tree_size
    result.reference_root_ok = sth.tree_size == n and roots[n] == sth.root_hash
    print(
        f"[{result.backend}] {STH_COUNT} STHs of size {sth.tree_size:,}: first "
        f"{result.sth_ms[0]:.0f} ms, median {sorted(result.sth_ms)[STH_COUNT // 2]:.0f} ms; "
        f"root matches the reference: {result.reference_root_ok}",
        flush=True,
    )

    result.stats_before = table_stats(engine, result.backend)
    indexes = rng.sample(range(n), min(args.proofs, n))
    hashes = [leaf_hash_of(i) for i in indexes]
    first = "as appended"
    if result.backend == "postgres":
        first = "never analyzed" if "never" in result.stats_before else "autovacuum's statistics"
    rounds = [(first, "")]
    if result.backend == "postgres" and args.try_index:
        rounds.append((f"{first}, experimental index (leaf_hash, leaf_index)", "index"))
    if result.backend == "postgres" and args.analyze:
        rounds.append(("after ANALYZE log_entries, log_nodes", "analyze"))
    for label, setup in rounds:
        with engine.begin() as conn:
            if setup == "index":  # not in the schema: the scratch database only, dropped below
                conn.execute(
                    text(f"CREATE INDEX {TRY_INDEX} ON log_entries (leaf_hash, leaf_index)")
                )
            elif setup == "analyze":
                conn.execute(text("ANALYZE log_entries"))
                conn.execute(text("ANALYZE log_nodes"))
        timing = ProofRound(label)
        path_total = 0
        for i, hashed in zip(indexes, hashes, strict=True):
            t0 = time.perf_counter()
            with unit_of_work(sessions) as session:
                proof = log.inclusion_proof(session, leaf_hash=hashed, tree_size=sth.tree_size)
            timing.ms.append((time.perf_counter() - t0) * 1e3)
            path_total += len(proof.audit_path)
            if proof.leaf_index == i and merkle.verify_inclusion_hash(
                hashed, proof.leaf_index, sth.tree_size, proof.audit_path, sth.root_hash
            ):
                timing.ok += 1
        timing.path_len = path_total / max(1, len(indexes))
        timing.ms.sort()
        result.inclusion.append(timing)
        print(
            f"[{result.backend}] inclusion proofs ({label}): {timing.ok}/{len(indexes)} verify, "
            f"p50 {percentile(timing.ms, 50):.2f} ms  p99 {percentile(timing.ms, 99):.2f} ms  "
            f"max {timing.ms[-1]:.2f} ms",
            flush=True,
        )
        if args.explain and result.backend == "postgres":
            worst = max(indexes)  # the last leaf sampled: the longest scan if the plan is linear
            with captured(engine) as seen, unit_of_work(sessions) as session:
                log.inclusion_proof(session, leaf_hash=leaf_hash_of(worst), tree_size=n)
            result.explains += explain(engine, f"inclusion_proof of leaf {worst:,} ({label})", seen)
        if setup == "index":
            with engine.begin() as conn:
                conn.execute(text(f"DROP INDEX {TRY_INDEX}"))  # back to the schema as shipped

    path_total = 0
    for number, first in enumerate(firsts):
        spy = captured(engine) if args.explain and number == 0 else contextlib.nullcontext()
        with spy as seen:
            t0 = time.perf_counter()
            with unit_of_work(sessions) as session:
                proof_c = log.consistency_proof(session, first=first, second=sth.tree_size)
            result.consistency_ms.append((time.perf_counter() - t0) * 1e3)
        if seen is not None and result.backend == "postgres":
            result.explains += explain(engine, f"consistency_proof {first:,} -> {n:,}", seen)
        path_total += len(proof_c)
        if merkle.verify_consistency(first, sth.tree_size, roots[first], sth.root_hash, proof_c):
            result.consistency_ok += 1
    result.consistency_path_len = path_total / max(1, len(firsts))
    result.consistency_ms.sort()
    print(
        f"[{result.backend}] consistency proofs: {result.consistency_ok}/{len(firsts)} verify, "
        f"p50 {percentile(result.consistency_ms, 50):.2f} ms  "
        f"p99 {percentile(result.consistency_ms, 99):.2f} ms",
        flush=True,
    )


def run_audit(sessions: sessionmaker[Session], result: Result, data_dir: Path) -> None:
    print(f"[{result.backend}] audit ...", flush=True)
    result.audit_rss_before_mb = rss_mb()
    with PeakRss() as peak:
        t0 = time.perf_counter()
        with unit_of_work(sessions) as session:
            report = audit.audit(session, data_dir=data_dir)
        result.audit_seconds = time.perf_counter() - t0
    result.audit_rss_after_mb = rss_mb()
    result.audit_peak_mb = peak.peak
    result.audit_ok = report.ok
    result.audit_problems = report.problem_count
    result.audit_entries = report.entries_checked
    result.audit_nodes = report.nodes_checked
    result.audit_heads = report.tree_heads_checked
    print(
        f"[{result.backend}] audit ok={report.ok} in {result.audit_seconds:.1f} s, "
        f"{report.entries_checked:,} entries, {report.nodes_checked:,} nodes; "
        f"rss {result.audit_rss_before_mb:.1f} -> {result.audit_rss_after_mb:.1f} MB "
        f"(peak {result.audit_peak_mb:.1f})",
        flush=True,
    )


def run(args: argparse.Namespace) -> Result:
    result = Result(args.backend, args.entries)
    scratch = scratch_sqlite() if args.backend == "sqlite" else scratch_postgres(args.postgres_url)
    data_dir = Path(tempfile.mkdtemp(prefix="mobilend-logbench-data-"))
    try:
        with scratch as url:
            upgrade(url)
            engine = build_engine(url)
            try:
                sessions = session_factory(engine)
                print(f"[{args.backend}] recording {args.entries:,} leaves ...", flush=True)
                record_all(sessions, args, result)
                print(f"[{args.backend}] appending ...", flush=True)
                append_all(engine, sessions, args, result)
                count_rows(engine, result)
                prove(engine, sessions, args, result, data_dir)
                run_audit(sessions, result, data_dir)
            finally:
                engine.dispose()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


# ---------------------------------------------------------------- report


def memory_verdict(r: Result) -> tuple[bool, str]:
    """Constant if RSS grows less than FLAT_TOLERANCE_MB from the end of slice 2 to the last."""
    if len(r.slices) < 3:
        return False, "too few slices to judge"
    warm, last = r.slices[1], r.slices[-1]
    growth = last.rss_mb - warm.rss_mb
    flat = growth < FLAT_TOLERANCE_MB
    return flat, (
        f"{'constant' if flat else 'GROWING'}: {growth:+.1f} MB from {warm.size:,} to "
        f"{last.size:,} leaves ({growth * MB / max(1, last.size - warm.size):+.2f} bytes/append)"
    )


def speed_verdict(r: Result) -> tuple[bool, str]:
    """No slowdown if the last slice appends at least SLOWDOWN_TOLERANCE of slice 2's rate."""
    if len(r.slices) < 3:
        return False, "too few slices to judge"
    warm, last = r.slices[1], r.slices[-1]
    ratio = last.rate / warm.rate if warm.rate else 0.0
    ok = ratio >= SLOWDOWN_TOLERANCE
    return ok, (
        f"{'no slowdown' if ok else 'SLOWING'}: last slice {fmt_int(last.rate)}/s = "
        f"{ratio:.2f}x slice 2 ({fmt_int(warm.rate)}/s)"
    )


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.2f} ms"


def plan_summary(statement: str, plan: str) -> str:
    """`statement` (shortened): its scans (costs dropped), rows filtered out, execution time."""
    query = " ".join(statement.split())
    query = re.sub(r"\(\(%\(param.*\)\)", "((...))", query)  # the IN list of node keys
    query = query if len(query) <= 140 else query[:139] + "…"
    lines = [ln.strip().removeprefix("->").strip() for ln in plan.splitlines()]
    scans = [re.sub(r"\s*\(cost=[^)]*\)", "", ln) for ln in lines if " Scan " in f" {ln} "]
    removed = [ln for ln in lines if ln.startswith("Rows Removed by Filter")]
    timing = next((ln for ln in lines if ln.startswith("Execution Time")), "")
    return f"`{query}`: " + "; ".join([*scans[:2], *removed, timing])


def report(r: Result, args: argparse.Namespace) -> str:
    flat, mem_text = memory_verdict(r)
    steady, speed_text = speed_verdict(r)
    n = r.entries
    proofs = len(r.inclusion[0].ms) if r.inclusion else 0
    cons = len(r.consistency_ms)
    rows = [
        [
            f"`log.record`, {args.record_batch:,} per unit of work",
            f"{fmt_int(r.record_rate)}/s",
            "-",
        ],
        [
            f"`log.append_pending`, {args.batch:,} leaves per transaction, 0 to {n:,} "
            f"({r.append_seconds:.1f} s, {r.append_batches} batches)",
            f"{fmt_int(r.append_rate)}/s",
            "tracked",
        ],
        ["appends/s, slowest slice", f"{fmt_int(min(s.rate for s in r.slices))}/s", "-"],
        ["appends/s, as the tree grows", speed_text, "no slowdown"],
        ["memory per append", mem_text, f"constant (< {FLAT_TOLERANCE_MB:.0f} MB growth)"],
        [
            "RSS: before appending / peak while appending / after",
            f"{r.rss_before_append_mb:.0f} / {r.append_peak_mb:.0f} / {r.slices[-1].rss_mb:.0f} MB",
            "-",
        ],
        [
            "node rows (log_nodes) / leaves",
            f"{fmt_int(r.nodes)} / {fmt_int(n)} = {r.nodes / n:.3f} "
            f"(2n - popcount(n) = {fmt_int(r.nodes_expected)}: "
            f"{'exact' if r.nodes == r.nodes_expected else 'MISMATCH'})",
            "about 2",
        ],
        [
            "pending left after `log.relay`",
            f"{r.pending_left} (relay appended {r.relay_leftover})",
            "0",
        ],
        [
            f"`log.sign_tree_head` at {r.sth_size:,}, {len(r.sth_ms)} in a row: first / median",
            f"{r.sth_ms[0]:.1f} ms / {sorted(r.sth_ms)[len(r.sth_ms) // 2]:.1f} ms",
            "-",
        ],
        [
            "STH root = root rebuilt from the leaf inputs outside the database",
            "yes" if r.reference_root_ok else "NO",
            "yes",
        ],
        *[
            row
            for k in r.inclusion
            for row in (
                [
                    f"inclusion proof by leaf hash, {proofs:,} random leaves, {k.label}, "
                    "p50 / p99 / max",
                    " / ".join(ms(k.ms, q) for q in (50, 99, 100)),
                    f"tracked (< {PROOF_SLOW_MS:.0f} ms)",
                ],
                [
                    f"inclusion proofs verified with the STH root (mean path {k.path_len:.1f})",
                    f"{k.ok:,} / {proofs:,}",
                    "all",
                ],
            )
        ],
        [
            f"consistency proof, {cons:,} random sizes to {n:,}, p50 / p99 / max",
            " / ".join(ms(r.consistency_ms, q) for q in (50, 99, 100)),
            f"tracked (< {PROOF_SLOW_MS:.0f} ms)",
        ],
        [
            f"consistency proofs verified (mean length {r.consistency_path_len:.1f})",
            f"{r.consistency_ok:,} / {cons:,}",
            "all",
        ],
        [
            f"`audit.audit` of the whole log ({fmt_int(r.audit_entries)} entries, "
            f"{fmt_int(r.audit_nodes)} nodes, {r.audit_heads} STH)",
            f"{r.audit_seconds:.1f} s ({fmt_int(r.audit_entries / max(r.audit_seconds, 1e-9))}"
            " leaves/s), "
            f"{'ok' if r.audit_ok else f'{r.audit_problems} PROBLEMS'}",
            "ok",
        ],
        [
            "audit RSS: before / after / peak",
            f"{r.audit_rss_before_mb:.0f} / {r.audit_rss_after_mb:.0f} / {r.audit_peak_mb:.0f} MB "
            f"({r.audit_peak_mb - r.audit_rss_before_mb:+.1f} MB)",
            "constant memory",
        ],
    ]
    parts = [table(["measure", "result", "target"], rows), ""]
    all_verified = all(k.ok == proofs for k in r.inclusion) and r.consistency_ok == cons
    parts.append(
        f"**Memory per append constant: {'met' if flat else 'NOT met'}**; "
        f"**appends do not slow down with tree size: {'met' if steady else 'NOT met'}**; "
        f"all proofs verify: {'yes' if all_verified else 'NO'}; audit: "
        f"{'ok' if r.audit_ok else 'PROBLEMS'}."
        + (f" Table sizes: {', '.join(f'{k} {v}' for k, v in r.sizes.items())}." if r.sizes else "")
        + (f" Planner statistics before the proofs: {r.stats_before}." if r.stats_before else "")
    )
    slow = [k for k in r.inclusion if percentile(k.ms, 99) > PROOF_SLOW_MS]
    if slow:
        others = "; ".join(
            f"{k.label}: p99 {percentile(k.ms, 99):.1f} ms" for k in r.inclusion if k not in slow
        )
        walk = any(
            "using pk_log_entries" in plan and "Rows Removed by Filter" in plan
            for _, _, plan in r.explains
        )
        cause = (
            "The lookup in `log.inclusion_proof`, `SELECT min(leaf_index) FROM log_entries "
            "WHERE leaf_hash = ? AND leaf_index < ?`, is planned without statistics as a walk "
            "of `pk_log_entries` in index order filtering on `leaf_hash` (min() becomes ORDER "
            "BY leaf_index LIMIT 1 and the planner expects many matches), so it reads every "
            "entry before the leaf: O(n), see the plans below. `ix_log_entries_leaf_hash` "
            "(leaf_hash alone) is only chosen once ANALYZE has run; an index on (leaf_hash, "
            "leaf_index) answers the query with one index probe whatever the statistics."
            if walk
            else "Run with `--explain` for the query plans."
        )
        parts += [
            "",
            f"**Finding: inclusion proofs are slow ({slow[0].label}: p99 "
            f"{percentile(slow[0].ms, 99):.0f} ms).** {cause} Other rounds: {others}.",
        ]
    parts += [
        "",
        f"Appends per slice of {args.slice:,} leaves: rate over the slice's transactions; where a "
        f"batch of {args.batch:,} leaves spends its time, mean ms per batch (driver time per "
        "statement, commit, and the rest: Python, hashing and the ORM); the 1-minute load "
        "average and the benchmark process's RSS at the slice's end:",
        "",
        table(
            [
                "tree size",
                "appends/s",
                "slowest batch ms",
                *[f"{k} ms" for k in PARTS],
                "load",
                "RSS MB",
            ],
            [
                [
                    fmt_int(s.size),
                    fmt_int(s.rate),
                    f"{s.max_batch_ms:.0f}",
                    *[f"{s.per_batch_ms(k):.0f}" for k in PARTS],
                    f"{s.load:.1f}",
                    f"{s.rss_mb:.1f}",
                ]
                for s in r.slices
            ],
        ),
    ]
    if r.explains:
        parts += ["", "Query plans (EXPLAIN ANALYZE, run right after the call they come from):", ""]
        for what, statement, plan in r.explains:
            if re.search(r"\bFROM log_head\b", statement):
                continue  # the head row by primary key: always one index probe
            parts.append(f"- {what}: {plan_summary(statement, plan)}")
    return "\n".join(parts).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="leaves to log")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--record-batch", type=int, default=10_000, help="records per unit of work")
    parser.add_argument(
        "--batch", type=int, default=log.BATCH, help="leaves per append transaction"
    )
    parser.add_argument(
        "--slice", type=int, default=0, help="leaves per sample (default entries/10)"
    )
    parser.add_argument(
        "--proofs", type=int, default=1_000, help="inclusion and consistency proofs"
    )
    parser.add_argument("--seed", type=int, default=20251130)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database to CREATE/DROP the scratch database from",
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the SELECTs")
    parser.add_argument(
        "--try-index",
        action="store_true",
        help="PostgreSQL: a round of inclusion proofs with an index on (leaf_hash, leaf_index) "
        "added to the scratch database before any ANALYZE",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="PostgreSQL: skip the second round of inclusion proofs after ANALYZE",
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.entries < 2 or args.record_batch < 1 or args.batch < 1 or args.proofs < 1:
        parser.error("--entries must be at least 2; --record-batch, --batch, --proofs positive")
    args.slice = args.slice or max(args.batch, args.entries // 10)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    result = run(args)
    out = report(result, args)
    print()
    for what, statement, plan in result.explains:
        print(f"-- {what}\n{statement}\n{plan}\n")
    print(out)
    if args.write:
        body = "\n".join(
            [
                f"## Transparency log at {args.entries:,} entries ({args.backend})",
                "",
                f"`bench/log_bench.py` on a scratch {args.backend} database migrated with Alembic, "
                "all in the benchmark process through the service functions. It records "
                f"{args.entries:,} pending leaves with `log.record` ({args.record_batch:,} per "
                "unit of work; kinds repayment/disbursement/decision, refs of ids, digest = "
                "SHA-256 of the record number), then appends them with `log.append_pending` in "
                f"transactions of {args.batch:,} leaves (what `log.relay` loops), timing each "
                f"slice of {args.slice:,} leaves and reading the process RSS (psutil) after it. "
                "An append reads only the head row's frontier and writes the entries, the nodes "
                "each leaf completes and the new frontier, so its cost and the relay's memory "
                "must not depend on the tree size. At full size it signs a tree head, asks for "
                f"{args.proofs:,} inclusion proofs by leaf hash (random leaves, each call in its "
                f"own unit of work like a request) and {args.proofs:,} consistency proofs from "
                "random sizes to the full size, verifies every proof against the STH root (and "
                "the old roots rebuilt from the leaf inputs outside the database), then runs "
                "`audit.audit` over the whole log. "
                + (
                    "`--try-index` adds a round of inclusion proofs with an index on "
                    "(leaf_hash, leaf_index) created in the scratch database only (not in the "
                    "schema; dropped after the round). "
                    if args.try_index
                    else ""
                )
                + "The inclusion-proof rounds run before and after ANALYZE, since the lookup "
                "by hash is planned from statistics. "
                + (
                    "PostgreSQL 15 (shared_buffers 128 MB; see below for autovacuum, which "
                    "decides whether the planner has statistics); "
                    if args.backend == "postgres"
                    else "SQLite in WAL mode on a temporary file; "
                )
                + "other processes (test runs of other sessions) shared the CPUs, so the "
                "figures are noisy.",
                "",
                *machine_lines(),
                "",
                out,
            ]
        )
        print(f"\nwrote {write_section('log', body)}")


if __name__ == "__main__":
    main()
