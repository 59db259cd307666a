"""The close on the real task engine: two Procrastinate worker processes, and kill -9.

Each test has two PostgreSQL databases holding the same book. One is closed in-process; the
other through jobs deferred on Procrastinate and run by separate `mobilend worker` processes.
Both must end identical (loans, installments, every journal line, delinquency, events).
In the crash tests a worker is killed with SIGKILL just before a task commits (the failpoint
MOBILEND_CLOSE_FAILPOINT), the close is found half done, and running it again finishes it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from mobilend.ledger.models import JournalEntry
from mobilend.servicing import close, tasks
from mobilend.servicing.models import CloseRun, CloseTask
from tests.integration.close_book import END, START, book, state
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration
NOW = datetime(2024, 3, 1, tzinfo=UTC)
SIZE = 10  # loan ids per partition: 40 loans, 5 partitions


def _worker(url: str, data_dir: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = os.environ | {
        "MOBILEND_DATABASE_URL": url,
        "MOBILEND_DATA_DIR": str(data_dir),
        "MOBILEND_LOG_SCHEDULE": "false",
    }
    args = [sys.executable, "-m", "mobilend.cli", "worker", "--queue", "close"]
    log = (data_dir / f"worker-{len(list(data_dir.glob('worker-*')))}.log").open("wb")
    # to a file, not a pipe: a pipe nobody reads fills up and blocks the worker's logging
    return subprocess.Popen(args, env=environ | env, stdout=log, stderr=subprocess.STDOUT)


def _wait(predicate: Any, timeout: float = 240, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _registered(db: Db, count: int) -> bool:
    return bool(db(lambda s: s.scalar(text("SELECT count(*) FROM procrastinate_workers"))) >= count)


def _defer(db: Db, day: date) -> dict[str, Any]:
    def defer(session: Any) -> dict[str, Any]:
        return tasks.defer_close(
            session,
            business_date=day,
            today=END,
            now=NOW,
            requested_by="test",
            partition_size=SIZE,
        )

    return db(defer)


def _status(db: Db, day: date) -> dict[str, Any]:
    return db(lambda s: close.close_status(s, day)) or {}


def _in_process(db: Db, day: date, data_dir: Path) -> dict[str, Any]:
    return close.run_in_process(
        db.factory,
        business_date=day,
        today=END,
        clock=lambda: NOW,
        requested_by="test",
        data_dir=data_dir,
        partition_size=SIZE,
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _twins(twin_pg: tuple[str, str]) -> tuple[Db, Db]:
    reference, distributed = Db(twin_pg[0]), Db(twin_pg[1])
    for db in (reference, distributed):
        book(db, random.Random(3), count=40)
    return reference, distributed


def test_two_worker_processes_close_like_in_process(
    twin_pg: tuple[str, str], tmp_path: Path
) -> None:
    reference, distributed = _twins(twin_pg)
    procs = [_worker(twin_pg[1], tmp_path) for _ in range(2)]
    try:
        _wait(lambda: _registered(distributed, 2), what="two workers")
        for offset in range(3):
            day = START + timedelta(days=offset)
            _in_process(reference, day, tmp_path)
            deferred = _defer(distributed, day)
            assert deferred["status"] == "running" and deferred["jobs"] == 5
            _wait(lambda d=day: _status(distributed, d).get("status") == "done", what="close")
            assert distributed(state) == reference(state), day
        workers = distributed(
            lambda s: set(s.scalars(select(CloseTask.worker).where(CloseTask.step == "loans")))
        )
        assert len(workers) >= 2, workers  # both processes took partitions
        assert all(w and w.split(":")[1].isdigit() for w in workers)
        # deferring a done date again defers nothing and changes nothing
        before = distributed(state)
        again = _defer(distributed, START)
        assert (again["business_date"], again["status"], again["jobs"]) == (
            START.isoformat(),
            "done",
            0,
        )
        assert distributed(state) == before
    finally:
        _stop(procs)


@pytest.mark.parametrize("failpoint", ["loans:2", "collections:0"])
def test_kill_9_mid_close_then_resume(
    twin_pg: tuple[str, str], tmp_path: Path, failpoint: str
) -> None:
    reference, crashed = _twins(twin_pg)
    day = START
    _in_process(reference, day, tmp_path)
    expected = reference(state)

    doomed = _worker(twin_pg[1], tmp_path, MOBILEND_CLOSE_FAILPOINT=failpoint)
    try:
        _defer(crashed, day)
        doomed.wait(timeout=90)
    finally:
        _stop([doomed])
    assert doomed.returncode == -signal.SIGKILL
    step, part = failpoint.split(":")
    half = _status(crashed, day)
    assert half["status"] == "running"
    task = select(CloseTask).where(
        CloseTask.business_date == day, CloseTask.step == step, CloseTask.part == int(part)
    )
    killed = crashed(lambda s: s.scalar(task))
    assert killed.status == "pending" and killed.attempts == 0  # nothing of it committed
    if step == "loans":  # the killed partition posted nothing; the done ones posted theirs
        partial = crashed(
            lambda s: s.scalar(
                select(func.count(func.distinct(JournalEntry.loan_id))).where(
                    JournalEntry.kind == "accrual", JournalEntry.business_date == day
                )
            )
        )
        full = reference(
            lambda s: s.scalar(
                select(func.count(func.distinct(JournalEntry.loan_id))).where(
                    JournalEntry.kind == "accrual", JournalEntry.business_date == day
                )
            )
        )
        assert 0 < partial < full
        assert crashed(state) != expected

    # the next day cannot start while this one is unfinished
    with pytest.raises(Exception, match="still running"):
        _defer(crashed, day + timedelta(days=1))

    rescuer = _worker(twin_pg[1], tmp_path)
    try:
        resumed = _defer(crashed, day)
        assert resumed["status"] == "running" and resumed["jobs"] >= 1
        _wait(lambda: _status(crashed, day).get("status") == "done", what="resumed close")
    finally:
        _stop([rescuer])
    assert crashed(state) == expected
    runs = crashed(lambda s: s.scalar(select(func.count()).select_from(CloseRun)))
    assert runs == 1
