"""The log's timetable: tree heads at intervals, a daily self-audit, one leader at a time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobilend.app import create_app
from mobilend.db.session import engine_for, session_factory, unit_of_work
from mobilend.settings import Settings
from mobilend.trust import log, schedule
from mobilend.trust.models import LogEntry, TreeHead

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIVE_MIN, DAY = timedelta(minutes=5), timedelta(days=1)


def _record(sessions, n: int) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as s:
        for i in range(n):
            log.record(s, kind="repayment", refs={"loan_id": i + 1}, digest=bytes(32), at=T0)


def test_tick_signs_when_due_and_audits_daily(isolated_db_url: str, tmp_path: Path) -> None:
    sessions = session_factory(engine_for(isolated_db_url))
    state = schedule.ScheduleState()

    def tick(at: datetime) -> dict[str, object]:
        return schedule.tick(sessions, now=at, data_dir=tmp_path, state=state,
                             sth_every=FIVE_MIN, audit_every=DAY)  # fmt: skip

    _record(sessions, 3)
    assert tick(T0) == {"appended": 3, "sth": 3, "audit_ok": True}
    report = json.loads((tmp_path / "log-audit-latest.json").read_text())
    assert report["ok"] is True
    _record(sessions, 2)
    assert tick(T0 + timedelta(minutes=4)) == {}  # not due yet
    assert tick(T0 + FIVE_MIN) == {"appended": 2, "sth": 5}
    assert tick(T0 + 2 * FIVE_MIN) == {"appended": 0}  # nothing new: no new tree head
    # a day after the last signature: signed again although nothing changed; audited again
    assert tick(T0 + FIVE_MIN + DAY) == {"appended": 0, "sth": 5, "audit_ok": True}
    with unit_of_work(sessions) as s:
        assert s.scalar(select(func.count()).select_from(TreeHead)) == 3
        assert s.scalar(select(func.count()).select_from(LogEntry)) == 5


def test_only_one_process_leads(isolated_db_url: str, tmp_path: Path) -> None:
    engine = engine_for(isolated_db_url)
    with (
        schedule.leadership(engine, tmp_path) as first,
        schedule.leadership(engine, tmp_path) as second,
    ):
        assert (first, second) == (True, False)
    with schedule.leadership(engine, tmp_path) as again:
        assert again


def test_the_server_runs_the_timetable(isolated_db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=isolated_db_url, data_dir=tmp_path, log_schedule=True,
                        log_sth_interval_seconds=1, preload_models=False)  # fmt: skip
    app = create_app(settings)
    _record(app.state.sessions, 4)
    with TestClient(app):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with unit_of_work(app.state.sessions) as s:
                heads = s.scalar(select(func.max(TreeHead.tree_size)))
            if heads == 4:
                break
            time.sleep(0.2)
    assert heads == 4
    assert (tmp_path / "log-audit-latest.json").exists()
