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
from datetime import UTC, date, datetime
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


def run_close(url: str, workers: int, loans: int, data_dir: Path) -> dict[str, Any]:
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
        t0 = time.perf_counter()
        with unit_of_work(sessions) as session:
            tasks.defer_close(
                session,
                business_date=BUSINESS_DATE,
                today=BUSINESS_DATE,
                now=datetime.now(UTC),
                requested_by="bench",
                partition_size=size,
            )
        while True:
            for i, proc in enumerate(procs):
                with contextlib.suppress(psutil.Error):
                    peaks[i] = max(peaks[i], psutil.Process(proc.pid).memory_info().rss)
            with unit_of_work(sessions) as session:
                status = close.close_status(session, BUSINESS_DATE) or {}
                failed = tasks.failed_jobs(session, BUSINESS_DATE)
            if status.get("status") == "done":
                break
            if failed:
                raise RuntimeError(f"{failed} close job(s) failed")
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    return {
        "seconds": seconds,
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
                result = run_close(url, workers, loans, data_dir)
            result |= {"book": loans, "workers": workers, "bare": bare, "generated": generated}
            print(
                f"{loans:>9,} loans, {workers} worker(s): close {result['seconds']:.1f} s, "
                f"bare {bare:.1f} s, peak {result['peak_mb']:.0f} MB",
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
        "The whole close of one business date on PostgreSQL, run by `mobilend worker` processes "
        "through Procrastinate (wall time from deferring the jobs to the run marked done), "
        "beside the bare set-based accrual UPDATE on the same rows in the same run (best of two, "
        "rolled back). Books from `bench/portfolio.py` (cloned templates booked through the "
        "services; no pledges).",
        "",
        common.table(
            [
                "loans",
                "workers",
                "partitions",
                "close s",
                "bare s",
                "close / bare",
                "loans/s",
                "peak RSS per worker",
            ],
            [
                [
                    common.fmt_int(r["book"]),
                    r["workers"],
                    r["partitions"],
                    f"{r['seconds']:.1f}",
                    f"{r['bare']:.1f}",
                    f"{r['seconds'] / r['bare']:.1f}x" if r["bare"] else "-",
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
