"""The daily close of 10k, 100k and 1M loans on PostgreSQL, with 1 and 2 Procrastinate workers.

For each book size:

1. a scratch database is migrated and filled by `portfolio.generate` (active loans accrued
   through the day before the business date; see bench/portfolio.py), then frozen as a
   template;
2. for each worker count, a fresh copy of the template (CREATE DATABASE ... TEMPLATE) gets:
   - the "bare" baseline of the issue: the set-based SQL that does the interest accrual UPDATE
     alone on the same rows (`portfolio.bare_accrual_update`, rolled back), best of two;
   - the real close: `mobilend worker --queue close` processes started on it and registered,
     then `tasks.defer_close` and the wall time until the run is done. The workers' peak RSS
     is sampled every 0.2 s with psutil.
3. the close's partition size is the book / 16 (1,000 to 50,000 ids), so two workers share
   the work.

Every close runs all steps (accrual, penalty, delinquency, classification, provisioning,
month-end snapshots when due, reminders, collateral, device policy, collections, the log).
No pledges are generated, so the collateral and device steps find nothing to do; their cost on
a pledged book is in the mark-to-market section.

    .venv/bin/python bench/close.py [--sizes 10000,100000,1000000] [--workers 1,2] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import portfolio
import psutil
import psycopg
from psycopg import sql

from mobilend.db.migrate import upgrade
from mobilend.db.session import engine_for, session_factory, unit_of_work
from mobilend.servicing import close, tasks

ADMIN = os.environ.get("MOBILEND_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BUSINESS_DATE = date(2026, 10, 15)


def _sa(url: str) -> str:
    return "postgresql+psycopg://" + url.removeprefix("postgresql://")


@contextlib.contextmanager
def _copy(template: str) -> Iterator[str]:
    """A copy of the template database, dropped afterwards."""
    name = f"{template}_run_{os.getpid()}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield ADMIN.rpartition("/")[0] + "/" + name
    finally:
        engine_for.cache_clear()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(drop)


SAME_WRITES_SQL = [
    portfolio.BARE_INSTALLMENTS_SQL,
    portfolio.BARE_LOANS_SQL.replace(
        "SET accrued_through = %(day)s", "SET accrued_through = %(day)s, penalty_carry = '0'"
    ),
    """
    WITH e AS (
        INSERT INTO journal_entries (loan_id, kind, business_date, description)
        SELECT id, 'accrual', %(day)s, 'same writes' FROM loans WHERE status = 'active'
        RETURNING id, loan_id
    )
    INSERT INTO journal_lines (entry_id, account, loan_id, currency, amount)
    SELECT e.id, v.account, e.loan_id, 'CNY', v.amount
      FROM e CROSS JOIN (VALUES ('interest_receivable', 1.00), ('interest_income', -1.00)) v(
           account, amount)
    """,
    """
    INSERT INTO loan_delinquency AS o (loan_id, business_date, dpd, bucket, loan_class, npl,
        overdue_principal, overdue_interest, overdue_fee, overdue_penalty,
        outstanding_principal, exposure, provision)
    SELECT id, %(day)s, 0, 'M0', 'normal', false, 0, 0, 0, 0, principal, principal, 0
      FROM loans WHERE status = 'active'
    ON CONFLICT (loan_id) DO UPDATE SET business_date = excluded.business_date,
        exposure = excluded.exposure, provision = excluded.provision
    """,
]


def same_writes(url: str, day: date) -> float:
    """Seconds for the close's main writes with none of its logic, in one transaction, rolled
    back: the bare accrual UPDATEs, one 2-line journal entry per active loan (through the same
    foreign keys and zero-sum trigger, checked at the end), one loan_delinquency upsert each."""
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        t0 = time.perf_counter()
        for statement in SAME_WRITES_SQL:
            conn.execute(statement, {"day": day})
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred zero-sum checks, now
        return time.perf_counter() - t0


def _workers(url: str, count: int, data_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = os.environ | {
        "MOBILEND_DATABASE_URL": _sa(url),
        "MOBILEND_DATA_DIR": str(data_dir),
        "MOBILEND_LOG_SCHEDULE": "false",
    }
    args = [sys.executable, "-m", "mobilend.cli", "worker", "--queue", "close"]
    return [subprocess.Popen(args, env=env) for _ in range(count)]


def _registered(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


def _close_one(
    sessions: Any, day: date, size: int, procs: list[subprocess.Popen[bytes]], peaks: list[int]
) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    with unit_of_work(sessions) as session:
        tasks.defer_close(
            session,
            business_date=day,
            today=day,
            now=datetime.now(UTC),
            requested_by="bench",
            partition_size=size,
        )
    while True:
        for i, proc in enumerate(procs):
            with contextlib.suppress(psutil.Error):
                peaks[i] = max(peaks[i], psutil.Process(proc.pid).memory_info().rss)
        with unit_of_work(sessions) as session:
            status = close.close_status(session, day) or {}
            failed = tasks.failed_jobs(session, day)
        if status.get("status") == "done":
            return time.perf_counter() - t0, status
        if failed:
            raise RuntimeError(f"{failed} close job(s) failed")
        time.sleep(0.2)


def run_close(url: str, workers: int, loans: int, data_dir: Path) -> dict[str, Any]:
    """The first close of the generated book, then the next day's (a normal night)."""
    size = max(1_000, min(50_000, loans // 16))
    procs = _workers(url, workers, data_dir)
    peaks = [0] * workers
    try:
        deadline = time.monotonic() + 120
        while _registered(url) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.2)
        sessions = session_factory(engine_for(_sa(url)))
        first, status = _close_one(sessions, BUSINESS_DATE, size, procs, peaks)
        nxt = BUSINESS_DATE + timedelta(days=1)
        second, _ = _close_one(sessions, nxt, size, procs, peaks)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    return {
        "first": first,
        "seconds": second,
        "partition_size": size,
        "partitions": status["partitions"],
        "loans": status["loans_done"],
        "peak_mb": max(peaks) / 2**20,
    }


def bench_size(loans: int, worker_counts: list[int], data_dir: Path) -> list[dict[str, Any]]:
    rows = []
    with common.scratch_postgres(ADMIN, prefix=f"bench_close_{loans}") as template:
        upgrade(_sa(template))
        t0 = time.perf_counter()
        portfolio.generate(template, loans=loans, business_date=BUSINESS_DATE)
        generated = time.perf_counter() - t0
        engine_for.cache_clear()
        name = template.rpartition("/")[2]
        for workers in worker_counts:
            with _copy(name) as url:
                bare = min(
                    portfolio.bare_accrual_update(url, business_date=BUSINESS_DATE)
                    for _ in range(2)
                )
                writes = same_writes(url, BUSINESS_DATE)
                result = run_close(url, workers, loans, data_dir)
            result |= {
                "book": loans,
                "workers": workers,
                "bare": bare,
                "writes": writes,
                "generated": generated,
            }
            print(
                f"{loans:>9,} loans, {workers} worker(s): first close {result['first']:.1f} s, "
                f"next day {result['seconds']:.1f} s, bare {bare:.1f} s, "
                f"same writes {writes:.1f} s, "
                f"peak {result['peak_mb']:.0f} MB",
                flush=True,
            )
            rows.append(result)
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    body = [
        "## Daily close (bench/close.py)",
        "",
        *common.machine_lines(),
        "",
        "The whole close of a business date on PostgreSQL, run by `mobilend worker` processes "
        "through Procrastinate (wall time from deferring the jobs to the run marked done): the "
        "first close of the generated book (which also writes off the loans already past 180 "
        "DPD and opens a collection case for every delinquent loan), then the next day's, a "
        "normal night; beside it, the bare set-based accrual UPDATE on the same rows in the "
        "same run (best of two, rolled back), and the *same writes*: those UPDATEs plus one "
        "two-line journal entry and one loan_delinquency upsert per active loan, with no "
        "logic (`SAME_WRITES_SQL`, one transaction, rolled back). Books from "
        "`bench/portfolio.py` (cloned templates booked through the services; no pledges).",
        "",
        common.table(
            [
                "loans",
                "workers",
                "partitions",
                "first close s",
                "next-day close s",
                "bare s",
                "same writes s",
                "next day / bare",
                "next day / same writes",
                "loans/s (next day)",
                "peak RSS per worker",
            ],
            [
                [
                    common.fmt_int(r["book"]),
                    r["workers"],
                    r["partitions"],
                    f"{r['first']:.1f}",
                    f"{r['seconds']:.1f}",
                    f"{r['bare']:.1f}",
                    f"{r['writes']:.1f}",
                    f"{r['seconds'] / r['bare']:.1f}x" if r["bare"] else "-",
                    f"{r['seconds'] / r['writes']:.1f}x" if r["writes"] else "-",
                    common.fmt_int(r["book"] / r["seconds"]),
                    f"{r['peak_mb']:.0f} MB",
                ]
                for r in rows
            ],
        ),
    ]
    return "\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    data_dir = Path(os.environ.get("MOBILEND_BENCH_DATA", "/tmp/mobilend-bench-close"))
    rows = []
    for size in sizes:
        rows += bench_size(size, counts, data_dir)
    text = report(rows)
    print(text)
    if args.write:
        print(f"wrote {common.write_section('close', text)}")


if __name__ == "__main__":
    main()
