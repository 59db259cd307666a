"""The log's own timetable: tree heads at intervals, a self-audit every day.

`tick` does what is due at `now`: append pending leaves and sign a tree head every
`log_sth_interval_seconds` (when the tree grew, or once a day even if it did not, so a
monitor always sees a fresh signature), and audit the whole log every
`log_audit_interval_seconds`, writing the report to data_dir/log-audit-latest.json and to
the server log (an error when the audit finds tampering). `mobilend serve` runs `tick` in a
background loop (`run_forever`); only one process of a deployment runs it at a time: the
holder of a PostgreSQL advisory lock, or on SQLite of a lock file in data_dir. The daily
close's task engine will take this over (issue 6); the functions stay the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mobilend.db.session import unit_of_work
from mobilend.trust import audit, log

LOG = logging.getLogger("mobilend.trust.schedule")
ADVISORY_KEY = 0x4D4C_4F47  # "MLOG"
HEARTBEAT = timedelta(days=1)  # sign even an unchanged tree this often


@dataclass
class ScheduleState:
    last_sth: datetime | None = None  # the last time signing was considered
    last_signed: datetime | None = None
    last_sth_size: int = -1
    last_audit: datetime | None = None


def tick(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    data_dir: Path,
    state: ScheduleState,
    sth_every: timedelta,
    audit_every: timedelta,
) -> dict[str, Any]:
    """Do what is due at `now`; returns what was done (for logs and tests)."""
    done: dict[str, Any] = {}
    if state.last_sth is None or now - state.last_sth >= sth_every:
        done["appended"] = log.relay(sessions, now=now)
        with unit_of_work(sessions) as session:
            size = log.tree_size(session)
            stale = state.last_signed is None or now - state.last_signed >= HEARTBEAT
            if size != state.last_sth_size or stale:
                sth = log.sign_tree_head(session, now=now, data_dir=data_dir)
                done["sth"] = sth.tree_size
                state.last_sth_size, state.last_signed = size, now
        state.last_sth = now
    if state.last_audit is None or now - state.last_audit >= audit_every:
        with unit_of_work(sessions) as session:
            report = audit.audit(session, data_dir=data_dir)
        body = report.to_json() | {"audited_at": now.isoformat()}
        _write_json(data_dir / "log-audit-latest.json", body)
        if report.ok:
            LOG.info("transparency log audit passed: %s leaves", body.get("tree_size"))
        else:
            LOG.error("transparency log audit FAILED: %s", json.dumps(body)[:2000])
        done["audit_ok"] = report.ok
        state.last_audit = now
    return done


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=str))
    os.replace(tmp, path)


@contextlib.contextmanager
def leadership(engine: Engine, data_dir: Path) -> Iterator[bool]:
    """True while this process holds the schedule's lock (held until the context exits)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            )
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "log-schedule.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_forever(
    engine: Engine,
    sessions: sessionmaker[Session],
    *,
    clock: Callable[[], datetime],
    data_dir: Path,
    sth_every: timedelta,
    audit_every: timedelta,
    stop: Callable[[float], bool],
) -> None:
    """The server's loop: lead if no other process does; otherwise retry now and then.

    `stop(seconds)` waits up to `seconds` and says whether to stop (a threading.Event.wait).
    """
    poll = max(1.0, min(sth_every.total_seconds(), 60.0))
    while not stop(0):
        with leadership(engine, data_dir) as leader:
            if not leader:
                if stop(poll):
                    return
                continue
            state = ScheduleState()
            while True:
                try:
                    tick(sessions, now=clock(), data_dir=data_dir, state=state,
                         sth_every=sth_every, audit_every=audit_every)  # fmt: skip
                except Exception:  # keep serving; the next tick tries again
                    LOG.exception("transparency log schedule failed")
                if stop(poll):
                    return
