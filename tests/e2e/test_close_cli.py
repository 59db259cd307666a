"""`mobilend close run` on SQLite (in-process): a kill -9 mid-close, then a resume.

A reference database holding the same book is closed without interruption; the crashed one
must end identical after `close run` is run again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from mobilend.db.migrate import upgrade
from mobilend.servicing import close
from tests.integration.close_book import END, START, book, state
from tests.integration.helpers import Db


def _cli(url: str, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = os.environ | {"MOBILEND_DATABASE_URL": url, "MOBILEND_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "mobilend.cli", "close", *args],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_close_cli_kill_9_and_resume_on_sqlite(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path}/{name}.db" for name in ("reference", "crashed")]
    dbs = []
    for url in urls:
        upgrade(url)
        db = Db(url)
        book(db, random.Random(9), count=12)
        dbs.append(db)
    reference, crashed = dbs
    close.run_in_process(
        reference.factory,
        business_date=START,
        today=END,
        clock=lambda: datetime.now(UTC),
        requested_by="test",
        data_dir=tmp_path,
        partition_size=4,
    )

    args = ["run", "--date", START.isoformat(), "--partition-size", "4", "--json"]
    killed = _cli(urls[1], tmp_path, *args, MOBILEND_CLOSE_FAILPOINT="loans:1")
    assert killed.returncode == -signal.SIGKILL
    status = _cli(urls[1], tmp_path, "status", "--date", START.isoformat())
    half = json.loads(status.stdout)
    assert half["status"] == "running" and half["partitions_done"] == 1  # part 0 committed

    resumed = _cli(urls[1], tmp_path, *args)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "done" and result["loans_done"] == 12
    assert crashed(state) == reference(state)

    # the next date cannot skip one, and the error names the field
    gap = _cli(urls[1], tmp_path, "run", "--date", "2023-12-22", "--json")
    assert gap.returncode == 2
    assert json.loads(gap.stderr)["error"]["field"] == "business_date"


def test_close_cli_on_postgresql_starts_its_own_workers(
    isolated_pg_url: str, tmp_path: Path
) -> None:
    db = Db(isolated_pg_url)
    book(db, random.Random(2), count=12)
    args = ["run", "--date", START.isoformat(), "--partition-size", "5", "--workers", "2", "--json"]
    done = _cli(isolated_pg_url, tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["status"] == "done" and result["engine"] == "procrastinate"
    assert result["partitions"] == 3 and result["loans_done"] == 12
    assert all(w.split(":")[1].isdigit() for w in result["workers"])
    # the same date again: nothing is deferred, the stored status comes back
    again = _cli(isolated_pg_url, tmp_path, *args)
    assert again.returncode == 0 and json.loads(again.stdout) == result
