"""Background work on Procrastinate (PostgreSQL): the close's tasks, its schedule, the relay.

Jobs live in the application's own PostgreSQL database (procrastinate_jobs, created by
migration 0011), so a job is deferred in the same transaction as the change that calls for it:
`defer_close` plans a close and defers its partition jobs in one commit, and the worker that
finishes the last partition defers the book-wide job in the transaction that marks its
partition done. Workers (`mobilend worker`) can run on any machine that reaches the database;
each job locks its close_tasks row, so a job that runs twice (a retry, a re-deferral after a
crash) does its work once.

Periodic tasks (run by any worker; Procrastinate makes sure each tick is deferred once):
- the daily close at MOBILEND_CLOSE_CRON (UTC) for the lender's yesterday;
- the notification relay every minute.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import procrastinate
from procrastinate import PsycopgConnector, SyncPsycopgConnector
from procrastinate.manager import JobManager
from procrastinate.tasks import configure_task
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mobilend.db.session import engine_for, normalize_url, session_factory, unit_of_work
from mobilend.servicing import close
from mobilend.servicing.models import CloseRun, CloseTask
from mobilend.settings import get_settings

QUEUE = "close"
NOTIFY_QUEUE = "notify"
SCHEDULE = "schedule:"  # requested_by of scheduled closes: schedule:<the lender's date>
PARTITION_TASK = "mobilend.close.partition"
BOOK_TASK = "mobilend.close.book"
app = procrastinate.App(connector=PsycopgConnector(), import_paths=["mobilend.servicing.tasks"])
_CLOSE_CRON = os.environ.get("MOBILEND_CLOSE_CRON", "30 16 * * *")


def conninfo(database_url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() != "postgresql":
        raise ValueError("the task engine needs PostgreSQL (SQLite closes run in-process)")
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def connector_for(database_url: str) -> PsycopgConnector:
    return PsycopgConnector(conninfo=conninfo(database_url))


@lru_cache(maxsize=4)
def _sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(engine_for(database_url))


def sessions() -> sessionmaker[Session]:
    return _sessions(get_settings().database_url)


def _now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def _sync_jobs() -> JobManager:
    """A job manager on a synchronous connector, for deferring on a caller's connection (inside
    a worker the app's own connector is asynchronous and cannot use a sync one)."""
    return JobManager(SyncPsycopgConnector())


def _defer(session: Session, task: str, jobs: list[dict[str, Any]]) -> None:
    """Defer jobs on the session's own psycopg connection: they commit or roll back with it."""
    driver = session.connection().connection.driver_connection
    deferrer = configure_task(name=task, job_manager=_sync_jobs(), queue=QUEUE, connection=driver)
    deferrer.batch_defer(*jobs)


# -- the close ---------------------------------------------------------------------------------


@app.task(name=PARTITION_TASK, queue=QUEUE)
def close_partition(business_date: str, part: int) -> None:
    day = date.fromisoformat(business_date)
    with unit_of_work(sessions()) as session:
        rows = close.run_loans_part(
            session, business_date=day, part=part, now=_now(), worker=close.worker_name()
        )
        if rows is None:
            return
        close.serialize_finish(session, day)  # the last partition to finish sees the others
        if close.loans_pending(session, day) == 0:
            _defer(session, BOOK_TASK, [{"business_date": business_date}])


@app.task(name=BOOK_TASK, queue=QUEUE)
def close_book(business_date: str) -> None:
    """The book-wide steps in order, by one job at a time per date (a second job deferred on a
    resume returns at once while the first runs; if the first died, its lock died with it)."""
    day = date.fromisoformat(business_date)
    settings = get_settings()
    factory = sessions()
    key = f"mobilend.close.book.{business_date}"
    with factory.kw["bind"].connect() as holder:
        if not holder.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key}):
            return
        try:
            for step in close.BOOK_STEPS:
                with unit_of_work(factory) as session:
                    close.run_book_step(
                        session,
                        factory,
                        business_date=day,
                        step=step,
                        now=_now(),
                        worker=close.worker_name(),
                        data_dir=settings.data_dir,
                    )
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
            holder.commit()
    _chain_scheduled(day)


def _chain_scheduled(day: date) -> None:
    """After a scheduled close, the next date too if it is already over (catching up a backlog
    one date after another, as the SQLite schedule does)."""
    settings = get_settings()
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    with unit_of_work(sessions()) as session:
        run = session.get(CloseRun, day)
        following = day + timedelta(days=1)
        if run is None or run.status != "done" or not run.requested_by.startswith(SCHEDULE):
            return
        tick = date.fromisoformat(run.requested_by.removeprefix(SCHEDULE))  # the night it ran for
        if following >= min(tick, today):
            return
        defer_close(
            session,
            business_date=following,
            today=today,
            now=_now(),
            requested_by=run.requested_by,
            partition_size=settings.close_partition_size,
        )


def defer_pending(session: Session, business_date: date) -> int:
    """Defer a job for every task of the close not done yet (new or resumed). Returns jobs."""
    pending = list(
        session.scalars(
            select(CloseTask).where(
                CloseTask.business_date == business_date, CloseTask.status != "done"
            )
        )
    )
    parts = [t.part for t in pending if t.step == close.LOANS]
    day = business_date.isoformat()
    if parts:
        _defer(session, PARTITION_TASK, [{"business_date": day, "part": p} for p in parts])
        return len(parts)
    if pending:
        _defer(session, BOOK_TASK, [{"business_date": day}])
        return 1
    return 0


def defer_close(
    session: Session,
    *,
    business_date: date,
    today: date,
    now: datetime,
    requested_by: str,
    partition_size: int,
) -> dict[str, Any]:
    """Plan the close (or find it) and defer its jobs, in the caller's transaction."""
    first_job = int(session.scalar(text("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")))
    run, _ = close.plan(
        session,
        business_date=business_date,
        today=today,
        now=now,
        requested_by=requested_by,
        engine=close.PROCRASTINATE,
        partition_size=partition_size,
    )
    jobs = defer_pending(session, business_date) if run.status != "done" else 0
    return {
        "business_date": business_date.isoformat(),
        "status": run.status,
        "jobs": jobs,
        "after_job_id": first_job,  # this deferral's jobs have higher ids
    }


@app.periodic(cron=_CLOSE_CRON)
@app.task(name="mobilend.close.scheduled", queue=QUEUE, queueing_lock="mobilend.close.scheduled")
def scheduled_close(timestamp: int) -> None:
    """The lender's yesterday, closed once; a missed day is closed first (no date skipped)."""
    settings = get_settings()
    today = datetime.fromtimestamp(timestamp, ZoneInfo(settings.timezone)).date()
    with unit_of_work(sessions()) as session:
        last = close.last_closed(session)
        day = today - timedelta(days=1) if last is None else last + timedelta(days=1)
        if day >= today:
            return
        defer_close(
            session,
            business_date=day,
            today=today,
            now=_now(),
            requested_by=f"{SCHEDULE}{today.isoformat()}",  # the chain closes up to its eve
            partition_size=settings.close_partition_size,
        )


# -- notifications -----------------------------------------------------------------------------


@app.periodic(cron="* * * * *")
@app.task(name="mobilend.notify.relay", queue=NOTIFY_QUEUE, queueing_lock="mobilend.notify.relay")
def relay_notifications(timestamp: int) -> None:
    from mobilend.notify.channels import channels_from_settings
    from mobilend.notify.relay import RelayConfig, relay_until_idle

    settings = get_settings()
    relay_until_idle(  # every message due now, in passes of notify_batch_size
        sessions(),
        clock=_now,
        channels=channels_from_settings(settings),
        config=RelayConfig.from_settings(settings),
        limit=settings.notify_batch_size,
    )


def run_worker(
    database_url: str, *, queues: list[str] | None, concurrency: int, until_idle: bool
) -> None:
    """Run a Procrastinate worker on this process until stopped (or idle, with until_idle)."""
    with app.replace_connector(connector_for(database_url)):
        app.run_worker(
            queues=queues,
            concurrency=concurrency,
            wait=not until_idle,
            install_signal_handlers=True,
        )


def failed_jobs(session: Session, business_date: date, *, after_job_id: int = 0) -> int:
    """The close's jobs that failed (their errors are in the workers' logs); only those
    deferred after `after_job_id`, so a resume is not judged by an earlier attempt's failure."""
    return int(
        session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed' "
                "AND task_name LIKE 'mobilend.close.%' AND args->>'business_date' = :d "
                "AND id > :after"
            ),
            {"d": business_date.isoformat(), "after": after_job_id},
        )
        or 0
    )
