"""Repayment posting through the real HTTP server, against bare INSERT transactions.

For each backend (a scratch SQLite file, a scratch PostgreSQL database):

1. bare: the same number of client threads run BEGIN; 4 small INSERTs (an entry header and 3
   lines, about as wide as a journal entry); COMMIT, straight through the driver;
2. service: `mobilend db upgrade`, `mobilend credentials create`, `mobilend serve` as a
   subprocess; a product, `--loans` loans booked a year back, disbursed and accrued to today;
   then `--postings` repayments (each with its own Idempotency-Key) posted by `--threads`
   httpx clients, spread round-robin over the loans. The server's resident memory (psutil) is
   read after start and after every `--sample-every` postings.

Targets from the issue: posting at least half the bare-INSERT transaction rate, the server
under 200 MB resident after start, and flat memory over 100,000 postings.
Only localhost traffic; the server is stopped and scratch databases dropped, even on error.

    .venv/bin/python bench/repayments.py [--backends sqlite,postgres] [--postings 20000] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil
import psycopg
from common import ROOT, fmt_int, machine_lines, percentile, table, write_section
from psycopg import sql

MOBILEND = ROOT / ".venv" / "bin" / "mobilend"
MB = 1024 * 1024
TARGET_RATIO = 0.5
TARGET_START_MB = 200.0
FLAT_TOLERANCE_MB = 10.0  # growth allowed from the warm sample to the last one
TIMEZONE = "Asia/Shanghai"  # the server's default business timezone (settings.timezone)


# ---------------------------------------------------------------- results


@dataclass
class Sample:
    postings: int
    rss_mb: float
    rate: float  # postings/s over the chunk that ended here
    response_kb: float  # mean response body size over the chunk


@dataclass
class BackendResult:
    backend: str
    bare_tx: int = 0
    bare_rate: float = 0.0
    bare_p50_ms: float = 0.0
    bare_p99_ms: float = 0.0
    same_rate: float = 0.0  # PostgreSQL: bare transactions doing a repayment's reads and writes
    postings: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_start_mb: float = 0.0
    rss_setup_mb: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    lines_per_entry: float = 0.0
    db_size: str = ""
    idempotency_size: str = ""
    balanced: bool | None = None
    stopped_early: str = ""
    setup_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.bare_rate if self.bare_rate else float("nan")


# ---------------------------------------------------------------- scratch databases


@contextlib.contextmanager
def scratch_sqlite(workdir: Path) -> Iterator[str]:
    path = workdir / "bench.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                (workdir / f"bench.db{suffix}").unlink()


@contextlib.contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    name = f"mobilend_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_dbname(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _with_dbname(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


# ---------------------------------------------------------------- bare INSERT transactions

PG_BARE_DDL = [
    """CREATE TABLE bare_entries (id bigserial PRIMARY KEY, loan_id integer, kind varchar(40)
       NOT NULL, business_date date NOT NULL, description varchar(200) NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE bare_lines (id bigserial PRIMARY KEY, entry_id bigint NOT NULL,
       account varchar(40) NOT NULL, loan_id integer, currency varchar(3) NOT NULL,
       amount numeric(20, 2) NOT NULL)""",
]
SQLITE_BARE_DDL = [
    """CREATE TABLE bare_entries (id integer PRIMARY KEY, loan_id integer, kind varchar(40)
       NOT NULL, business_date date NOT NULL, description varchar(200) NOT NULL,
       created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
    """CREATE TABLE bare_lines (id integer PRIMARY KEY, entry_id integer NOT NULL,
       account varchar(40) NOT NULL, loan_id integer, currency varchar(3) NOT NULL,
       amount numeric(20, 2) NOT NULL)""",
]
LINES = (("cash", "12.34"), ("interest_receivable", "-2.34"), ("principal_receivable", "-10.00"))

# The same reads and writes as one repayment through the service, as bare SQL: lock the loan,
# read its 24 installments, insert the entry, its lines, the repayment and its allocations,
# update the installment, read the balances, check and store the idempotency record.
PG_SAME_WRITES_DDL = [
    "CREATE TABLE bare_loans (id integer PRIMARY KEY, status varchar(16) NOT NULL)",
    """CREATE TABLE bare_installments (id bigserial PRIMARY KEY, loan_id integer NOT NULL,
       number integer NOT NULL, due_date date NOT NULL, principal numeric(20, 2) NOT NULL,
       interest numeric(20, 2) NOT NULL, paid_principal numeric(20, 2) NOT NULL DEFAULT 0,
       paid_interest numeric(20, 2) NOT NULL DEFAULT 0)""",
    "CREATE INDEX ON bare_installments (loan_id)",
    "CREATE INDEX ON bare_lines (loan_id, account)",
    """CREATE TABLE bare_repayments (id bigserial PRIMARY KEY, loan_id integer NOT NULL,
       amount numeric(20, 2) NOT NULL, value_date date NOT NULL, entry_id bigint NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE bare_allocations (id bigserial PRIMARY KEY, repayment_id bigint NOT NULL,
       entry_id bigint NOT NULL, installment_number integer NOT NULL,
       component varchar(16) NOT NULL, amount numeric(20, 2) NOT NULL)""",
    """CREATE TABLE bare_idempotency (key varchar(255) PRIMARY KEY, request_hash varchar(64)
       NOT NULL, response jsonb NOT NULL)""",
]


def same_writes_setup(url: str, loans: int = 400) -> None:
    """The tables a repayment touches, with `loans` loans of 24 installments each."""
    with psycopg.connect(url, autocommit=True) as conn:
        for ddl in PG_SAME_WRITES_DDL:
            conn.execute(ddl)
        conn.execute(
            "INSERT INTO bare_loans SELECT g, 'active' FROM generate_series(1, %s) g", (loans,)
        )
        conn.execute(
            "INSERT INTO bare_installments (loan_id, number, due_date, principal, interest)"
            " SELECT l, n, current_date + n * 30, 400, 20"
            " FROM generate_series(1, %s) l, generate_series(1, 24) n",
            (loans,),
        )


SAME_WRITES_RESPONSE = json.dumps(
    {"result": {"amount": "12.34"}, "loan": {"balances": {"p": "1.00"}}}
)


def same_writes_tx(conn: psycopg.Connection, loan: int, key: str) -> None:
    """One transaction doing a repayment's reads and writes (11 statements)."""
    with conn.transaction():
        conn.execute("SELECT response FROM bare_idempotency WHERE key = %s", (key,))
        conn.execute("SELECT * FROM bare_loans WHERE id = %s FOR UPDATE", (loan,))
        conn.execute(
            "SELECT * FROM bare_installments WHERE loan_id = %s ORDER BY number", (loan,)
        ).fetchall()
        entry = conn.execute(
            "INSERT INTO bare_entries (loan_id, kind, business_date, description)"
            " VALUES (%s, 'repayment', %s, 'repayment') RETURNING id",
            (loan, date.today()),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO bare_lines (entry_id, account, loan_id, currency, amount)"
            " VALUES (%s, %s, %s, 'CNY', %s), (%s, %s, %s, 'CNY', %s),"
            " (%s, %s, %s, 'CNY', %s)",
            [v for a, m in LINES for v in (entry, a, loan, Decimal(m))],
        )
        rep = conn.execute(
            "INSERT INTO bare_repayments (loan_id, amount, value_date, entry_id)"
            " VALUES (%s, 12.34, %s, %s) RETURNING id",
            (loan, date.today(), entry),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO bare_allocations (repayment_id, entry_id,"
            " installment_number, component, amount)"
            " VALUES (%s, %s, 1, 'interest', 2.34), (%s, %s, 1, 'principal', 10)",
            (rep, entry, rep, entry),
        )
        conn.execute(
            "UPDATE bare_installments SET paid_principal = paid_principal + 10,"
            " paid_interest = paid_interest + 2.34 WHERE loan_id = %s AND number = 1",
            (loan,),
        )
        conn.execute(
            "SELECT account, sum(amount) FROM bare_lines WHERE loan_id = %s GROUP BY account",
            (loan,),
        ).fetchall()
        conn.execute(
            "INSERT INTO bare_idempotency VALUES (%s, %s, %s)",
            (key, "0" * 64, SAME_WRITES_RESPONSE),
        )


def bare_postgres_same_writes(
    url: str, transactions: int, threads: int, loans: int = 400
) -> tuple[float, list[float]]:
    """Transactions doing what a repayment does in the database, with no application code."""
    same_writes_setup(url, loans)

    def worker(n: int) -> list[float]:
        times = []
        tag = uuid.uuid4().hex
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(n):
                t0 = time.perf_counter()
                same_writes_tx(conn, i % loans + 1, f"{tag}-{i}")
                times.append(time.perf_counter() - t0)
        return times

    return _run_bare(worker, transactions, threads)


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def bare_postgres(url: str, transactions: int, threads: int) -> tuple[float, list[float]]:
    with psycopg.connect(url, autocommit=True) as conn:
        for ddl in PG_BARE_DDL:
            conn.execute(ddl)

    def worker(n: int) -> list[float]:
        times = []
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(n):
                t0 = time.perf_counter()
                with conn.transaction():
                    cur = conn.execute(
                        "INSERT INTO bare_entries (loan_id, kind, business_date, description)"
                        " VALUES (%s, %s, %s, %s) RETURNING id",
                        (i % 400 + 1, "repayment", date.today(), f"repayment {i} bank-ref"),
                    )
                    entry_id = cur.fetchone()[0]  # type: ignore[index]
                    for account, amount in LINES:
                        conn.execute(
                            "INSERT INTO bare_lines (entry_id, account, loan_id, currency, amount)"
                            " VALUES (%s, %s, %s, %s, %s)",
                            (entry_id, account, i % 400 + 1, "CNY", Decimal(amount)),
                        )
                times.append(time.perf_counter() - t0)
        return times

    return _run_bare(worker, transactions, threads)


def bare_sqlite(path: Path, transactions: int, threads: int) -> tuple[float, list[float]]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    setup = connect()
    for ddl in SQLITE_BARE_DDL:
        setup.execute(ddl)
    setup.close()

    def worker(n: int) -> list[float]:
        times = []
        conn = connect()
        try:
            for i in range(n):
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "INSERT INTO bare_entries (loan_id, kind, business_date, description)"
                    " VALUES (?, ?, ?, ?)",
                    (i % 400 + 1, "repayment", date.today().isoformat(), f"repayment {i} ref"),
                )
                for account, amount in LINES:
                    conn.execute(
                        "INSERT INTO bare_lines (entry_id, account, loan_id, currency, amount)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (cur.lastrowid, account, i % 400 + 1, "CNY", amount),
                    )
                conn.execute("COMMIT")
                times.append(time.perf_counter() - t0)
        finally:
            conn.close()
        return times

    return _run_bare(worker, transactions, threads)


def _run_bare(
    worker: Callable[[int], list[float]], transactions: int, threads: int
) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(worker, _split(transactions, threads)))
    elapsed = time.perf_counter() - t0
    return transactions / elapsed, sorted(t for part in parts for t in part)


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(MOBILEND), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"mobilend {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


@contextlib.contextmanager
def server(
    env: dict[str, str], port: int, log: Path, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MOBILEND), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /v1/health within 60 s")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
            return


def rss_mb(pid: int) -> float:
    """Resident memory of the largest server process (the master or one worker)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return max(float(p.memory_info().rss) for p in procs) / MB


# ---------------------------------------------------------------- the workload


def business_today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def a_year_before(day: date) -> date:
    return date(day.year - 1, day.month, min(day.day, 28))


def setup_loans(base: str, headers: dict[str, str], loans: int, threads: int) -> list[int]:
    """A product with penalty interest; loans booked a year ago, disbursed, accrued to today."""
    code = f"BENCH{uuid.uuid4().hex[:6]}"
    product = {"code": code, "name": "bench phone loan", "config": {"penalty_rate_pct": "18"}}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        r = client.post("/v1/products", json=product)
        r.raise_for_status()
    start = a_year_before(business_today())
    rng = random.Random(7)
    principals = [str(rng.randrange(20_000, 100_000, 100)) for _ in range(loans)]

    def book(principal: str) -> int:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            body = {
                "product_code": code,
                "principal": principal,
                "periods": 24,
                "start_date": start.isoformat(),
            }
            r = client.post("/v1/loans", json=body, headers=_key())
            _ok(r)
            loan_id = int(r.json()["id"])
            r = client.post(
                f"/v1/loans/{loan_id}/disbursements",
                json={"value_date": start.isoformat()},
                headers=_key(),
            )
            _ok(r)
            _ok(client.post(f"/v1/loans/{loan_id}/accruals", json={}, headers=_key()))
            return loan_id

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(book, principals))


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _ok(r: httpx.Response) -> None:
    if r.status_code != 201:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")


@dataclass
class Chunk:
    latencies: list[float]
    errors: Counter[str]
    examples: list[str]
    bytes: int
    elapsed: float


def post_chunk(
    base: str,
    headers: dict[str, str],
    loan_ids: list[int],
    first: int,
    count: int,
    threads: int,
    path: str = "/v1/loans/{loan_id}/repayments",
) -> Chunk:
    """Postings first..first+count-1; posting i pays loan i mod len(loans), a seeded amount."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    examples: list[str] = []
    size = [0]

    def worker(w: int) -> None:
        local: list[float] = []
        nbytes = 0
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for i in range(first + w, first + count, threads):
                loan_id = loan_ids[i % len(loan_ids)]
                cents = random.Random(i).randrange(500, 6000)
                body = {"amount": f"{cents // 100}.{cents % 100:02d}", "reference": f"b{i}"}
                t0 = time.perf_counter()
                try:
                    r = client.post(path.format(loan_id=loan_id), json=body, headers=_key())
                except httpx.HTTPError as exc:
                    with lock:
                        errors[type(exc).__name__] += 1
                    continue
                local.append(time.perf_counter() - t0)
                nbytes += len(r.content)
                if r.status_code != 201:
                    with lock:
                        errors[str(r.status_code)] += 1
                        if len(examples) < 3:
                            examples.append(f"{r.status_code} {r.text[:300]}")
        with lock:
            latencies.extend(local)
            size[0] += nbytes

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return Chunk(latencies, errors, examples, size[0], time.perf_counter() - t0)


# ---------------------------------------------------------------- database facts


def db_facts(url: str, result: BackendResult) -> None:
    """Lines per repayment entry, database size, the idempotency table's size."""
    query = (
        "SELECT count(l.id) * 1.0 / NULLIF(count(DISTINCT e.id), 0) FROM journal_entries e"
        " JOIN journal_lines l ON l.entry_id = e.id WHERE e.kind = 'repayment'"
    )
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        conn = sqlite3.connect(path)
        try:
            result.lines_per_entry = float(conn.execute(query).fetchone()[0] or 0)
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            result.db_size = f"{size / MB:,.0f} MB (file + WAL)"
            with contextlib.suppress(sqlite3.Error):
                row = conn.execute(
                    "SELECT sum(pgsize) FROM dbstat WHERE name = 'idempotency_records'"
                ).fetchone()
                if row and row[0]:
                    result.idempotency_size = f"{row[0] / MB:,.0f} MB"
        finally:
            conn.close()
        return
    with psycopg.connect(url) as conn:
        result.lines_per_entry = float(conn.execute(query).fetchone()[0] or 0)  # type: ignore[index]
        result.db_size = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]  # type: ignore[index]
        result.idempotency_size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('idempotency_records'))"
        ).fetchone()[0]  # type: ignore[index]


# ---------------------------------------------------------------- one backend


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    result = BackendResult(backend)
    scratch = (
        scratch_sqlite(workdir) if backend == "sqlite" else scratch_postgres(args.postgres_url)
    )
    with scratch as url:
        print(f"[{backend}] bare INSERT transactions x {args.bare_transactions}", flush=True)
        if backend == "sqlite":
            rate, times = bare_sqlite(workdir / "bare.db", args.bare_transactions, args.threads)
        else:
            rate, times = bare_postgres(url, args.bare_transactions, args.threads)
        result.bare_tx, result.bare_rate = args.bare_transactions, rate
        result.bare_p50_ms = percentile(times, 50) * 1e3
        result.bare_p99_ms = percentile(times, 99) * 1e3
        print(f"[{backend}] bare: {rate:,.0f} tx/s", flush=True)
        if backend == "postgres":
            result.same_rate, _ = bare_postgres_same_writes(
                url, args.bare_transactions, args.threads
            )
            print(
                f"[{backend}] bare, a repayment's writes: {result.same_rate:,.0f} tx/s", flush=True
            )

        env = {
            **os.environ,
            "MOBILEND_DATABASE_URL": url,
            "MOBILEND_DATA_DIR": str(workdir / "data"),
            "MOBILEND_BOOTSTRAP_ADMIN": "false",
        }
        cli(env, "db", "upgrade")
        token = json.loads(cli(env, "credentials", "create", "--name", "bench", "--role", "admin"))[
            "token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        port = free_port()
        with server(env, port, workdir / f"server-{backend}.log", args.workers) as proc:
            base = f"http://127.0.0.1:{port}"
            time.sleep(1.0)
            result.rss_start_mb = rss_mb(proc.pid)
            t0 = time.perf_counter()
            loan_ids = setup_loans(base, headers, args.loans, args.threads)
            result.setup_seconds = time.perf_counter() - t0
            result.rss_setup_mb = rss_mb(proc.pid)
            print(
                f"[{backend}] server rss {result.rss_start_mb:.0f} MB after start; "
                f"{len(loan_ids)} loans set up in {result.setup_seconds:.0f} s",
                flush=True,
            )
            soak(base, headers, loan_ids, proc, args, result)
        db_facts(url, result)
    return result


def soak(
    base: str,
    headers: dict[str, str],
    loan_ids: list[int],
    proc: subprocess.Popen[bytes],
    args: argparse.Namespace,
    result: BackendResult,
) -> None:
    latencies: list[float] = []
    elapsed = 0.0
    deadline = time.monotonic() + args.max_minutes * 60
    done = 0
    profiler = None
    target = args.sqlite_postings if result.backend == "sqlite" else args.postings
    while done < target:
        count = min(args.sample_every, target - done)
        chunk = post_chunk(base, headers, loan_ids, done, count, args.threads)
        done += count
        elapsed += chunk.elapsed
        latencies += chunk.latencies
        result.errors.update(chunk.errors)
        result.error_examples += chunk.examples[: 3 - len(result.error_examples)]
        sample = Sample(
            done,
            rss_mb(proc.pid),
            count / chunk.elapsed,
            chunk.bytes / max(1, len(chunk.latencies)) / 1024,
        )
        result.samples.append(sample)
        print(
            f"[{result.backend}] {done:>7,} postings  {sample.rate:6.0f}/s  "
            f"rss {sample.rss_mb:6.1f} MB  response {sample.response_kb:5.1f} KB  "
            f"errors {sum(result.errors.values())}",
            flush=True,
        )
        if sum(chunk.errors.values()) == count:
            result.stopped_early = f"every posting of a chunk failed: {chunk.examples[:1]}"
            break
        if args.py_spy and profiler is None:
            profiler = start_profiler(args, proc.pid, result.backend)
        if time.monotonic() > deadline and done < target:
            result.stopped_early = f"stopped at {done:,} postings: --max-minutes {args.max_minutes}"
            break
    if profiler is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(args.profile_seconds + 60)
        if profiler.poll() is None:
            profiler.terminate()
    latencies.sort()
    result.postings = done
    ok = done - sum(result.errors.values())
    result.rate = ok / elapsed if elapsed else 0.0
    result.p50_ms = percentile(latencies, 50) * 1e3
    result.p99_ms = percentile(latencies, 99) * 1e3
    result.max_ms = latencies[-1] * 1e3 if latencies else 0.0
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        r = client.get("/v1/ledger/trial-balance")
        if r.status_code == 200:
            result.balanced = bool(r.json().get("balanced"))


def start_profiler(args: argparse.Namespace, pid: int, backend: str) -> subprocess.Popen[bytes]:
    out = Path(args.profile_dir) / f"repayments-{backend}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"[{backend}] py-spy on pid {pid} for {args.profile_seconds} s -> {out}", flush=True)
    return subprocess.Popen(
        [
            args.py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(args.profile_seconds),
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- report


def memory_verdict(r: BackendResult) -> tuple[str, float, float]:
    """Flat if the last sample is within FLAT_TOLERANCE_MB of the warm one (after ~10%)."""
    if len(r.samples) < 2:
        return "too few samples", 0.0, 0.0
    warm = r.samples[max(0, len(r.samples) // 10 - 1)]
    last = r.samples[-1]
    growth = last.rss_mb - warm.rss_mb
    per_10k = _slope([(s.postings, s.rss_mb) for s in r.samples[r.samples.index(warm) :]]) * 1e4
    flat = growth <= FLAT_TOLERANCE_MB
    text = "flat" if flat else "GROWING"
    return f"{text} ({growth:+.1f} MB from {warm.postings:,} to {last.postings:,})", growth, per_10k


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of y over x (MB per posting)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def report(results: list[BackendResult], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        mem, _, per_10k = memory_verdict(r)
        rows.append(
            [
                r.backend,
                fmt_int(r.bare_rate) + "/s",
                f"{r.bare_p50_ms:.2f} / {r.bare_p99_ms:.2f}",
                fmt_int(r.postings),
                fmt_int(r.rate) + "/s",
                f"{r.p50_ms:.1f} / {r.p99_ms:.1f} / {r.max_ms:.0f}",
                f"{r.ratio:.3f}",
                f"{r.rss_start_mb:.0f} MB",
                f"{r.samples[-1].rss_mb:.0f} MB" if r.samples else "-",
                f"{per_10k:+.1f} MB",
                str(sum(r.errors.values())),
            ]
        )
    headers = [
        "backend",
        "bare tx/s",
        "bare p50/p99 ms",
        "postings",
        "service postings/s",
        "p50/p99/max ms",
        "service/bare",
        "RSS after start",
        "RSS at end",
        "RSS slope per 10k",
        "errors",
    ]
    parts = [table(headers, rows), ""]
    for r in results:
        mem, _, _ = memory_verdict(r)
        ratio_ok = "met" if r.ratio >= TARGET_RATIO else "NOT met"
        start_ok = "met" if r.rss_start_mb < TARGET_START_MB else "NOT met"
        parts += [
            f"**{r.backend}**: posting at least half the bare rate: **{ratio_ok}** "
            f"({r.ratio:.1%}); under 200 MB after start: **{start_ok}** "
            f"({r.rss_start_mb:.0f} MB; {r.rss_setup_mb:.0f} MB after setting up the loans); "
            f"memory over {r.postings:,} postings: **{mem}**. "
            f"Repayment entries average {r.lines_per_entry:.2f} lines; database {r.db_size}"
            + (f", of which idempotency records {r.idempotency_size}" if r.idempotency_size else "")
            + f"; trial balance balanced: {r.balanced}."
            + (
                f" Bare transactions doing a repayment's reads and writes (11 statements): "
                f"{r.same_rate:,.0f}/s; service/that = {r.rate / r.same_rate:.3f}."
                if r.same_rate
                else ""
            )
            + (f" Errors: {dict(r.errors)}, e.g. {r.error_examples[:1]}." if r.errors else "")
            + (f" {r.stopped_early}." if r.stopped_early else ""),
            "",
        ]
    for r in results:
        step = max(1, len(r.samples) // 20)
        picked = r.samples[::step]
        if r.samples and picked[-1] is not r.samples[-1]:
            picked.append(r.samples[-1])
        parts += [
            f"Soak, {r.backend} (every {args.sample_every:,} postings; rate over that chunk):",
            "",
            table(
                ["postings", "RSS MB", "postings/s", "mean response KB"],
                [
                    [
                        fmt_int(s.postings),
                        f"{s.rss_mb:.1f}",
                        fmt_int(s.rate),
                        f"{s.response_kb:.1f}",
                    ]
                    for s in picked
                ],
            ),
            "",
        ]
    return "\n".join(parts).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--postings", type=int, default=20_000, help="repayments per backend")
    parser.add_argument(
        "--sqlite-postings", type=int, default=0, help="repayments on SQLite (default --postings)"
    )
    parser.add_argument("--loans", type=int, default=400, help="loans the postings spread over")
    parser.add_argument("--threads", type=int, default=8, help="client threads (both tests)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--sample-every", type=int, default=0, help="default postings/20")
    parser.add_argument("--bare-transactions", type=int, default=20_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database to CREATE/DROP the scratch database from",
    )
    parser.add_argument("--max-minutes", type=float, default=30, help="soak time cap per backend")
    parser.add_argument("--py-spy", default="", help="path of py-spy: profile the server")
    parser.add_argument("--profile-seconds", type=int, default=30)
    parser.add_argument("--profile-dir", default=str(Path(tempfile.gettempdir()) / "bench-prof"))
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.postings <= 0 or args.loans <= 0 or args.threads <= 0:
        parser.error("--postings, --loans and --threads must be positive")
    args.sqlite_postings = args.sqlite_postings or args.postings
    args.sample_every = args.sample_every or max(100, args.postings // 20)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="mobilend-bench-"))
    try:
        for backend in backends:
            results.append(run_backend(backend, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    out = report(results, args)
    print()
    print(out)
    if args.write:
        body = "\n".join(
            [
                "## Repayment posting over HTTP (service vs bare INSERT)",
                "",
                f"`mobilend serve --workers {args.workers}` (uvicorn, access log on) on a scratch "
                f"database; {args.loans} loans of 20,000-100,000 over 24 months booked a year "
                "back with 18% penalty interest, disbursed and accrued to today, so every "
                "repayment is allocated by the waterfall to overdue penalty, interest and "
                f"principal. {args.threads} httpx client threads in the benchmark process post "
                "repayments of 5.00-59.99, each with its own Idempotency-Key, round-robin over "
                f"the loans. The bare test runs {args.threads} threads of BEGIN; 4 INSERTs (an "
                "entry and 3 lines); COMMIT straight through the driver (psycopg / sqlite3) "
                "on the same machine. Latencies are seen by the client; rates count 201s over "
                "the wall time of the postings. Client, server and database share the CPUs.",
                "",
                *machine_lines(),
                "",
                out,
            ]
        )
        print(f"\nwrote {write_section('repayments', body)}")


if __name__ == "__main__":
    main()
