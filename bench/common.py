"""Shared helpers for the benchmark scripts: machine facts, tables, and docs/benchmarks.md.

Benchmarks measure time; tests check correctness. Nothing here asserts a speed.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

INTRO = """# Benchmarks

Speed and memory figures for Mobilend, measured by the scripts in `bench/` and written here
by them. Tests check correctness, not time: no test fails because something got slower, so
these pages are how we notice. Each section below is replaced whole by its script's `--write`;
edit the text outside the markers by hand.

How to run them (from the repository root, PostgreSQL on 127.0.0.1:5432 for the second):

```
.venv/bin/python bench/quote_apr.py --write          # in-process: quotes and APR solves
.venv/bin/python bench/repayments.py --write         # HTTP: repayment postings, SQLite + PostgreSQL
.venv/bin/python bench/repayments.py --backends postgres --postings 100000 --write  # full soak
```

`--help` lists each script's options. Without `--write` a script only prints its table.
Figures depend on the machine; each section names the machine, date, command and commit.
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{out} (src/ with uncommitted changes)" if dirty else out


def command_line() -> str:
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def machine_lines() -> list[str]:
    return [
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gib():.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command_line()}`",
        f"- Commit: {git_commit()}",
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numeric-looking columns are right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    aligns = []
    for i, _ in enumerate(headers):
        values = [r[i] for r in cells if i < len(r)]
        numeric = bool(values) and all(_looks_numeric(v) for v in values)
        aligns.append("---:" if numeric else "---")
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("x", "").strip()
    for suffix in (" MB", " ms", " µs", "/s"):
        stripped = stripped.removesuffix(suffix)
    try:
        float(stripped)
    except ValueError:
        return text in ("-", "")
    return True


def write_section(name: str, body: str) -> Path:
    """Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (or append)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = DOC.read_text() if DOC.exists() else INTRO
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    return DOC


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (postgresql+psycopg://...) as libpq/psycopg accept it."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def scratch_postgres(
    admin_url: str, *, prefix: str, keep: bool = False, log: Callable[[str], None] = print
) -> Iterator[str]:
    """A new empty database on the server of `admin_url`, dropped afterwards unless `keep`.

    Yields its libpq URL (postgresql://...); the database is dropped even on error."""
    import psycopg
    from psycopg import sql

    admin = libpq_url(admin_url)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        base, _, _ = admin.rpartition("/")
        yield f"{base}/{name}"
    finally:
        if keep:
            log(f"kept scratch database {name} (--keep): drop it by hand")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            log(f"dropped scratch database {name}")
