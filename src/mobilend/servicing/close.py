"""The daily close (COB) of one business date: a plan of tasks, run by workers or in-process.

A close is planned once (`plan`): a close_runs row and one close_tasks row per range of loan ids
(step "loans") plus one per book-wide step, in one transaction. Then:

- step "loans", per partition [lo, hi), in one transaction: lock the range's active loans,
  accrue day D (set-based SQL on PostgreSQL, the Decimal path otherwise), refresh delinquency,
  tiers and provisions, keep month-end snapshots, plan reminders; the task row is marked done
  in the same transaction, so a partition is either wholly done or not at all;
- then the book-wide steps in order, each in its own transaction with its task row:
  collateral mark-to-market and margin calls, the device-lock policy, collections (promises,
  cases, write-offs past the product's DPD), and the transparency log's tree head;
- the run is marked done with the last step. A done date is never run again, a date after an
  open run or with a gap before it is refused: no date is closed twice or skipped.

Crash safety: everything a task writes commits with its done mark. After a kill -9, running
the close of the same date again finds the run, skips the done tasks and does the rest; the
ledger ends as if nothing had happened (tested). Accrual is guarded by loans.accrued_through
too, so it can never post a day twice.

Who runs the tasks: `servicing.tasks` (Procrastinate workers on PostgreSQL, on any number of
machines) or `run_in_process` (SQLite, or on request).
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.db.session import is_postgres, unit_of_work
from mobilend.loans.models import Loan
from mobilend.loans.service import accrue_locked
from mobilend.servicing import close_sql, status
from mobilend.servicing.models import CloseRun, CloseTask

LOANS = "loans"
BOOK_STEPS = ("collateral", "devices", "collections", "log")
PARTITION_SIZE = 25_000
CATCH_UP_BATCH = 200
IN_PROCESS = "in-process"
PROCRASTINATE = "procrastinate"

Progress = Callable[[dict[str, Any]], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- planning ----------------------------------------------------------------------------------


def last_closed(session: Session) -> date | None:
    return session.scalar(select(func.max(CloseRun.business_date)).where(CloseRun.status == "done"))


def plan(
    session: Session,
    *,
    business_date: date,
    today: date,
    now: datetime,
    requested_by: str,
    engine: str,
    partition_size: int = PARTITION_SIZE,
) -> tuple[CloseRun, bool]:
    """The run for `business_date`, created with its tasks if new. Returns (run, created).

    Refused: a date after today; a date before the last close; a date that skips one; a new
    date while another date's close is still running.
    """
    if partition_size < 1:
        raise ValidationFailed("partition_size", "positive", "partition_size must be >= 1")
    if business_date > today:
        raise ValidationFailed(
            "business_date", "not-future", f"{business_date} has not come yet (today is {today})"
        )
    if is_postgres(session):  # one planner at a time: two new dates, or one twice, never race
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('mobilend.close.plan'))"))
    existing = session.get(CloseRun, business_date, with_for_update=True)
    if existing is not None:
        return existing, False
    running = session.scalar(select(CloseRun.business_date).where(CloseRun.status == "running"))
    if running is not None:
        raise Conflict(
            f"the close of {running} is still running; finish it first",
            field="business_date",
            rule="running",
        )
    last = last_closed(session)
    if last is not None and business_date < last:
        raise Conflict(
            f"{business_date} is before the last closed date {last}; a closed date is final",
            field="business_date",
            rule="closed-final",
        )
    if last is not None and business_date > last + timedelta(days=1):
        raise Conflict(
            f"the close of {last + timedelta(days=1)} must run before {business_date} "
            "(rule no-skip: business dates are closed one after another)",
            field="business_date",
            rule="no-skip",
        )
    parts = _partitions(session, partition_size)
    run = CloseRun(
        business_date=business_date,
        status="running",
        engine=engine,
        partition_size=partition_size,
        loans=sum(count for _, count in parts),
        started_at=now,
        finished_at=None,
        requested_by=requested_by,
    )
    session.add(run)
    session.flush()
    session.add_all(
        CloseTask(
            business_date=business_date,
            step=LOANS,
            part=index,
            lo=index * partition_size,
            hi=(index + 1) * partition_size,
            status="pending",
            rows=0,
            attempts=0,
        )
        for index, _ in parts
    )
    session.add_all(
        CloseTask(
            business_date=business_date,
            step=step,
            part=0,
            lo=0,
            hi=0,
            status="pending",
            rows=0,
            attempts=0,
        )
        for step in BOOK_STEPS
    )
    session.flush()
    return run, True


def _partitions(session: Session, size: int) -> list[tuple[int, int]]:
    """(partition index, active loans) for every id range holding an active loan."""
    index = Loan.id // size
    rows = session.execute(
        select(index.label("part"), func.count())
        .where(Loan.status == "active")
        .group_by(text("part"))
        .order_by(text("part"))
    )
    return [(int(part), int(count)) for part, count in rows]


# -- tasks -------------------------------------------------------------------------------------


def _claim(session: Session, business_date: date, step: str, part: int) -> CloseTask | None:
    """Lock a pending task row; None when it is done or another worker holds it."""
    query = select(CloseTask).where(
        CloseTask.business_date == business_date, CloseTask.step == step, CloseTask.part == part
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    task = session.scalar(query)
    if task is None or task.status == "done":
        return None
    return task


def _failpoint(step: str, part: int) -> None:
    """MOBILEND_CLOSE_FAILPOINT=step:part kills this process (SIGKILL) before that task commits.

    For the crash tests only: it makes a kill -9 land at a known place.
    """
    if os.environ.get("MOBILEND_CLOSE_FAILPOINT") == f"{step}:{part}":
        os.kill(os.getpid(), signal.SIGKILL)


def run_loans_part(
    session: Session,
    *,
    business_date: date,
    part: int,
    now: datetime,
    worker: str,
    method: str = "auto",
) -> int | None:
    """The loan step for one partition; None if it was done already or is held elsewhere."""
    task = _claim(session, business_date, LOANS, part)
    if task is None:
        return None
    task.attempts += 1
    task.started_at = task.started_at or now
    set_based = method == "sql" or (method == "auto" and is_postgres(session))
    if set_based:
        session.execute(text("SET LOCAL jit = off"))  # short statements: compiling costs more
        close_sql.accrue_range(session, business_date=business_date, lo=task.lo, hi=task.hi)
        _catch_up(session, business_date, task.lo, task.hi, before=business_date - timedelta(1))
        rows = close_sql.refresh_range(
            session,
            business_date=business_date,
            lo=task.lo,
            hi=task.hi,
            policies=status.policies(session),
        )
        if status.is_month_end(business_date):
            close_sql.snapshot_range(session, business_date=business_date, lo=task.lo, hi=task.hi)
    else:
        _catch_up(session, business_date, task.lo, task.hi, before=business_date)
        rows = status.refresh_delinquency(
            session, business_date=business_date, lo=task.lo, hi=task.hi
        )
    # the close of D runs after D is over: reminders are for the borrowers' next day, D + 1
    _plan_reminders(session, business_date + timedelta(days=1), now, task.lo, task.hi)
    _done(session, task, rows, worker, now)
    _failpoint(LOANS, part)
    return rows


def _catch_up(session: Session, business_date: date, lo: int, hi: int, *, before: date) -> None:
    """The Decimal path for active loans in [lo, hi) accrued through a day before `before`."""
    last = lo - 1
    while True:
        loans = list(
            session.scalars(
                select(Loan)
                .where(
                    Loan.id > last,
                    Loan.id < hi,
                    Loan.status == "active",
                    Loan.accrued_through < before,
                )
                .order_by(Loan.id)
                .limit(CATCH_UP_BATCH)
                .with_for_update()
            )
        )
        if not loans:
            return
        for loan in loans:
            accrue_locked(session, loan, business_date)
        session.flush()
        last = loans[-1].id


def _plan_reminders(session: Session, business_date: date, now: datetime, lo: int, hi: int) -> None:
    from mobilend.servicing import reminders

    reminders.plan_reminders(session, business_date=business_date, now=now, lo=lo, hi=hi)


def _done(session: Session, task: CloseTask, rows: int, worker: str, now: datetime) -> None:
    task.status = "done"
    task.rows = rows
    task.worker = worker[:120]
    task.finished_at = now
    session.flush()


def loans_pending(session: Session, business_date: date) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                CloseTask.business_date == business_date,
                CloseTask.step == LOANS,
                CloseTask.status != "done",
            )
        )
        or 0
    )


def serialize_finish(session: Session, business_date: date) -> None:
    """Serialise the workers finishing partitions, so the last one sees all others committed.

    A transaction-scoped advisory lock, not the run row's FOR UPDATE: the foreign keys of
    close_tasks take a key-share lock on that row, and two workers upgrading their shared lock
    at once would deadlock (seen under load)."""
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('mobilend.close.' || :d))"),
            {"d": business_date.isoformat()},
        )


def lock_run(session: Session, business_date: date) -> CloseRun:
    """The run row, locked for the rest of the transaction."""
    run = session.get(CloseRun, business_date, with_for_update=True, populate_existing=True)
    if run is None:
        raise ValidationFailed("business_date", "planned", f"no close planned for {business_date}")
    return run


def run_book_step(
    session: Session,
    sessions: sessionmaker[Session],
    *,
    business_date: date,
    step: str,
    now: datetime,
    worker: str,
    data_dir: Path,
) -> dict[str, Any] | None:
    """One book-wide step; None if done already. Refused while loan partitions are pending."""
    if step not in BOOK_STEPS:
        raise ValidationFailed("step", "one-of", f"step must be one of {list(BOOK_STEPS)}")
    if loans_pending(session, business_date):
        raise Conflict(
            f"loan partitions of {business_date} are still pending",
            field="step",
            rule="partitions-pending",
        )
    earlier = BOOK_STEPS[: BOOK_STEPS.index(step)]
    undone = session.scalars(
        select(CloseTask.step).where(
            CloseTask.business_date == business_date,
            CloseTask.step.in_(earlier),
            CloseTask.status != "done",
        )
    ).all()
    if undone:
        raise Conflict(
            f"step {step} of {business_date} waits for {sorted(undone)}",
            field="step",
            rule="steps-in-order",
        )
    task = _claim(session, business_date, step, 0)
    if task is None:
        return None
    task.attempts += 1
    task.started_at = task.started_at or now
    result = _BOOK[step](session, sessions, business_date, now, data_dir)
    _done(session, task, int(sum(v for v in result.values() if isinstance(v, int))), worker, now)
    _failpoint(step, 0)
    if step == BOOK_STEPS[-1]:
        run = lock_run(session, business_date)
        run.status = "done"
        run.finished_at = now
    return result


def _collateral(
    session: Session, _: sessionmaker[Session], day: date, now: datetime, __: Path
) -> dict[str, Any]:
    from mobilend.collateral import marking

    return marking.mark_all(session, on=day, now=now)


def _devices(
    session: Session, _: sessionmaker[Session], day: date, now: datetime, data_dir: Path
) -> dict[str, Any]:
    from mobilend.collateral import devices

    return devices.run_policy(session, on=day, now=now, data_dir=data_dir)


def _collections(
    session: Session, _: sessionmaker[Session], day: date, now: datetime, __: Path
) -> dict[str, Any]:
    from mobilend.collections import service

    return dict(service.daily(session, business_date=day, now=now))


def _log(
    session: Session, _: sessionmaker[Session], day: date, now: datetime, data_dir: Path
) -> dict[str, Any]:
    from mobilend.trust import log

    appended = 0  # in this step's transaction (SQLite has one writer: no second one here)
    while batch := log.append_pending(session, now=now):
        appended += batch
    head = log.sign_tree_head(session, now=now, data_dir=data_dir)
    return {"appended": appended, "tree_size": head.tree_size}


_BOOK: dict[str, Callable[..., dict[str, Any]]] = {
    "collateral": _collateral,
    "devices": _devices,
    "collections": _collections,
    "log": _log,
}


# -- status and the in-process runner ----------------------------------------------------------


def close_status(session: Session, business_date: date | None = None) -> dict[str, Any] | None:
    """A run's progress: tasks done of all, loans done, steps; the latest run by default."""
    if business_date is None:
        business_date = session.scalar(select(func.max(CloseRun.business_date)))
        if business_date is None:
            return None
    run = session.get(CloseRun, business_date, populate_existing=True)
    if run is None:
        return None
    tasks = list(
        session.scalars(
            select(CloseTask)
            .where(CloseTask.business_date == business_date)
            .execution_options(populate_existing=True)
        )
    )
    parts = [t for t in tasks if t.step == LOANS]
    return {
        "business_date": run.business_date.isoformat(),
        "status": run.status,
        "engine": run.engine,
        "loans": run.loans,
        "loans_done": sum(t.rows for t in parts if t.status == "done"),
        "partitions": len(parts),
        "partitions_done": sum(1 for t in parts if t.status == "done"),
        "steps": {t.step: t.status for t in tasks if t.step != LOANS},
        "workers": sorted({t.worker for t in tasks if t.worker}),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "tasks_total": len(tasks),
        "tasks_done": sum(1 for t in tasks if t.status == "done"),
    }


def run_in_process(
    sessions: sessionmaker[Session],
    *,
    business_date: date,
    today: date,
    clock: Callable[[], datetime],
    requested_by: str,
    data_dir: Path,
    partition_size: int = PARTITION_SIZE,
    method: str = "auto",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plan (or resume) and run every task here, one transaction per task."""
    with unit_of_work(sessions) as session:
        plan(
            session,
            business_date=business_date,
            today=today,
            now=clock(),
            requested_by=requested_by,
            engine=IN_PROCESS,
            partition_size=partition_size,
        )
        pending = [
            (t.step, t.part)
            for t in session.scalars(
                select(CloseTask)
                .where(CloseTask.business_date == business_date, CloseTask.status != "done")
                .order_by(CloseTask.id)
            )
        ]
    worker = worker_name()
    for step, part in pending:
        with unit_of_work(sessions) as session:
            if step == LOANS:
                run_loans_part(
                    session,
                    business_date=business_date,
                    part=part,
                    now=clock(),
                    worker=worker,
                    method=method,
                )
            else:
                run_book_step(
                    session,
                    sessions,
                    business_date=business_date,
                    step=step,
                    now=clock(),
                    worker=worker,
                    data_dir=data_dir,
                )
        if progress is not None:
            with unit_of_work(sessions) as session:
                progress(close_status(session, business_date) or {})
    with unit_of_work(sessions) as session:
        result = close_status(session, business_date)
    assert result is not None
    return result


def list_runs(session: Session, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest closes, newest first."""
    runs = session.scalars(select(CloseRun).order_by(CloseRun.business_date.desc()).limit(limit))
    return [
        {
            "business_date": r.business_date.isoformat(),
            "status": r.status,
            "engine": r.engine,
            "loans": r.loans,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "requested_by": r.requested_by,
        }
        for r in runs
    ]
