"""The daily close on the embedded default (SQLite): a thread of `mobilend serve` runs it.

On PostgreSQL the Procrastinate workers run the scheduled close (servicing.tasks); SQLite has
no task engine, so the server checks once a minute: when the lender's local time is past
`close_time` and the last closed date is before yesterday, it closes the next date in-process
(one date per check, so missed days are caught up in order). One process leads, by a lock
file in the data directory.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from mobilend.db.session import unit_of_work
from mobilend.servicing import close

LOG = logging.getLogger("mobilend.close")


def next_due(last: date | None, now: datetime, *, timezone: str, at: time) -> date | None:
    """The date the schedule should close now, or None (pure)."""
    local = now.astimezone(ZoneInfo(timezone))
    if local.time() < at:
        return None
    yesterday = local.date() - timedelta(days=1)
    day = yesterday if last is None else last + timedelta(days=1)
    return day if day <= yesterday else None


def run_due(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    clock: Callable[[], datetime],
    timezone: str,
    at: time,
    data_dir: Path,
    partition_size: int,
) -> dict[str, object] | None:
    """Close the due date, if any, in this process."""
    with unit_of_work(sessions) as session:
        running = close.close_status(session)
        last = close.last_closed(session)
    if running and running["status"] == "running":
        day = date.fromisoformat(str(running["business_date"]))  # resume it first
    else:
        due = next_due(last, now, timezone=timezone, at=at)
        if due is None:
            return None
        day = due
    today = now.astimezone(ZoneInfo(timezone)).date()
    return close.run_in_process(
        sessions,
        business_date=day,
        today=today,
        clock=clock,
        requested_by="schedule",
        data_dir=data_dir,
        partition_size=partition_size,
    )


def run_forever(
    sessions: sessionmaker[Session],
    *,
    clock: Callable[[], datetime],
    timezone: str,
    at: time,
    data_dir: Path,
    partition_size: int,
    stop: Callable[[float], bool],
) -> None:
    """Check every minute until `stop(seconds)` says to stop; lead by a lock file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "close-schedule.lock").open("w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop(60):
                    return
        while not stop(0):
            try:
                done = run_due(
                    sessions,
                    now=clock(),
                    clock=clock,
                    timezone=timezone,
                    at=at,
                    data_dir=data_dir,
                    partition_size=partition_size,
                )
                if done is not None:
                    LOG.info("closed %s: %s", done.get("business_date"), done.get("status"))
                    continue  # a missed day may be next
            except Exception:  # keep serving; the next check tries again
                LOG.exception("scheduled close failed")
            if stop(60):
                return
