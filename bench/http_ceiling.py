"""How fast can any Python web service post a repayment here? The ceiling beside our rate.

In one run on a scratch PostgreSQL database, with the same client (httpx threads in this
process) and the same server (uvicorn, `--workers`, access log on) for every HTTP row:

1. bare: BEGIN; 4 INSERTs; COMMIT straight through psycopg (the issue's reference rate);
2. bare, a repayment's reads and writes (11 statements) straight through psycopg;
3. HTTP no-op: bench/ceiling_app.py `/noop`, a FastAPI route with a repayment's body and
   headers that touches no database (the cost of HTTP + FastAPI + the client alone);
4. HTTP same writes: `/same-writes`, the same route running (2) on a per-thread connection
   (the fastest a FastAPI service doing a repayment's SQL can be, with no application logic);
5. Mobilend: `mobilend serve` posting real repayments (bench/repayments.py's service run).

    .venv/bin/python bench/http_ceiling.py [--requests 10000] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from common import ROOT, fmt_int, machine_lines, table, write_section
from repayments import (
    bare_postgres,
    bare_postgres_same_writes,
    free_port,
    post_chunk,
    run_backend,
    scratch_postgres,
    stop,
)

UVICORN = ROOT / ".venv" / "bin" / "uvicorn"


@contextlib.contextmanager
def ceiling_server(url: str, workers: int, log: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CEILING_DATABASE_URL": url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(UVICORN), "--app-dir", str(ROOT / "bench"), "ceiling_app:app",
             "--http", "mobilend.api.server:NoDelayH11Protocol",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ceiling app did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        stop(proc)


def http_rate(base: str, path: str, requests: int, threads: int) -> tuple[float, int]:
    loans = list(range(1, 401))
    post_chunk(base, {}, loans, 0, min(1000, requests), threads, path)  # warm up
    chunk = post_chunk(base, {}, loans, 10**6, requests, threads, path)
    failed = sum(chunk.errors.values())
    if failed:
        raise RuntimeError(f"{failed} failures on {path}: {chunk.examples[:1]}")
    return requests / chunk.elapsed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="per HTTP row and bare row")
    parser.add_argument("--service-postings", type=int, default=4_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    rows: list[tuple[str, float]] = []
    workdir = Path(tempfile.mkdtemp(prefix="mobilend-ceiling-"))
    try:
        with scratch_postgres(args.postgres_url) as url:
            bare, _ = bare_postgres(url, args.requests, args.threads)
            rows.append(("bare: BEGIN; 4 INSERTs; COMMIT (psycopg)", bare))
            same, _ = bare_postgres_same_writes(url, args.requests, args.threads)
            rows.append(("bare: a repayment's 11 statements (psycopg)", same))
            with ceiling_server(url, args.workers, workdir / "ceiling.log") as base:
                for label, path in (
                    ("HTTP no-op route (FastAPI, no database)", "/noop/{loan_id}"),
                    ("HTTP route running the 11 statements", "/same-writes/{loan_id}"),
                ):
                    rate, _ = http_rate(base, path, args.requests, args.threads)
                    rows.append((label, rate))
                    print(f"{label}: {rate:,.0f}/s", flush=True)
        ns = argparse.Namespace(
            postgres_url=args.postgres_url, bare_transactions=1000, threads=args.threads,
            workers=args.workers, loans=400, postings=args.service_postings,
            sqlite_postings=args.service_postings, sample_every=args.service_postings,
            max_minutes=30, py_spy="", profile_seconds=0, profile_dir=str(workdir),
        )  # fmt: skip
        service = run_backend("postgres", ns, workdir)
        rows.append(("Mobilend: POST /v1/loans/{id}/repayments", service.rate))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    out = table(
        ["what", "per second", "ratio to bare 4-INSERT"],
        [[label, fmt_int(rate), f"{rate / bare:.3f}"] for label, rate in rows],
    )
    print()
    print(out)
    if args.write:
        body = "\n".join(
            [
                "## The HTTP ceiling: what any FastAPI service can post here",
                "",
                f"One run on a scratch PostgreSQL database. {args.threads} httpx client threads "
                f"in the benchmark process; every HTTP row is uvicorn with {args.workers} workers "
                "and its access log on; bare rows go straight through psycopg with the same "
                f"threads. {fmt_int(args.requests)} requests or transactions per row (after "
                f"1,000 to warm up); Mobilend posts {fmt_int(args.service_postings)} "
                "repayments set up as in the repayment benchmark. Client, server and database "
                "share the CPUs.",
                "",
                *machine_lines(),
                "",
                out,
            ]
        )
        print(f"\nwrote {write_section('ceiling', body)}")


if __name__ == "__main__":
    main()
