"""The workers' periodic tasks on PostgreSQL: the scheduled close and the notification relay.

The periodic functions are called as Procrastinate calls them (with the tick's timestamp); the
deferred close jobs are then run by a real `mobilend worker --until-idle` process.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mobilend.notify.models import OutboxMessage
from mobilend.servicing import close, tasks
from mobilend.settings import get_settings
from tests.integration.close_book import book
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration


@pytest.fixture
def configured(isolated_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Db:
    monkeypatch.setenv("MOBILEND_DATABASE_URL", isolated_pg_url)
    monkeypatch.setenv("MOBILEND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MOBILEND_CLOSE_PARTITION_SIZE", "5")
    get_settings.cache_clear()
    tasks._sessions.cache_clear()
    yield Db(isolated_pg_url)
    get_settings.cache_clear()
    tasks._sessions.cache_clear()


def _work() -> None:
    """A real worker process that runs every close job there is, then stops."""
    worker = subprocess.run(
        [sys.executable, "-m", "mobilend.cli", "worker", "--queue", "close", "--until-idle"],
        env=os.environ.copy(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]


def _tick(y: int, m: int, d: int, hh: int, mm: int) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())


def test_scheduled_close_then_relay(configured: Db, tmp_path: Path) -> None:
    db = configured
    book(db, random.Random(4), count=12)
    tasks.scheduled_close(_tick(2023, 12, 21, 0, 30))  # the lender's yesterday: 2023-12-20
    planned = db(lambda s: close.close_status(s))
    assert planned is not None and planned["business_date"] == "2023-12-20"
    assert planned["status"] == "running" and planned["partitions"] == 3

    _work()
    done = db(lambda s: close.close_status(s))
    assert done is not None and done["status"] == "done" and done["loans_done"] == 12
    assert done["business_date"] == "2023-12-20"  # and no further: that night's eve

    # the next tick of the same night finds nothing to do
    tasks.scheduled_close(_tick(2023, 12, 21, 0, 31))
    assert db(lambda s: close.list_runs(s))[0]["business_date"] == "2023-12-20"
    # after three nights without workers, one tick catches up the backlog, date after date
    tasks.scheduled_close(_tick(2023, 12, 24, 0, 30))
    _work()
    runs = db(lambda s: close.list_runs(s))
    assert [r["business_date"] for r in runs] == [
        "2023-12-23",
        "2023-12-22",
        "2023-12-21",
        "2023-12-20",
    ]
    assert all(r["status"] == "done" for r in runs)
    assert {r["requested_by"] for r in runs[:3]} == {"schedule:2023-12-24"}

    # the close planned reminders for the overdue loans; the periodic relay task takes every
    # due one. These loans name no borrower (booked without an application), so each is
    # failed at once as undeliverable - not retried, not left pending.
    queued = db(lambda s: s.scalars(select(OutboxMessage.status)).all())
    assert queued and set(queued) == {"pending"}
    tasks.relay_notifications(int(datetime(2023, 12, 21, 2, tzinfo=UTC).timestamp()))
    after = db(lambda s: s.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all())
    assert len(after) == len(queued)
    assert all(status == "failed" and "no-recipient" in (error or "") for status, error in after)
