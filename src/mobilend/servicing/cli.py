"""`mobilend close run|status|list` and `mobilend worker`: the daily close from the terminal.

`close run` on PostgreSQL plans the close, defers its jobs and (unless --workers 0) starts
local worker processes that exit when the queue is idle; workers started elsewhere with
`mobilend worker` take jobs too. A Rich progress bar follows the close_tasks table. On SQLite,
or with --in-process, the tasks run in this process. Run it again after a crash: the close
resumes where it stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mobilend.cli_common import echo, fail, run
from mobilend.core.errors import MobilendError

close_app = typer.Typer(help="The daily close (COB): run, resume, follow.", no_args_is_help=True)
console = Console(stderr=True)


def _today() -> date:
    from mobilend.settings import get_settings

    return datetime.now(ZoneInfo(get_settings().timezone)).date()


def _now() -> datetime:
    return datetime.now(UTC)


@close_app.command("run")
def run_close(
    business_date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD; default: the day after the last close")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="local worker processes (PostgreSQL); 0: external only")
    ] = None,
    in_process: Annotated[bool, typer.Option("--in-process", help="run every task here")] = False,
    partition_size: Annotated[int | None, typer.Option(help="loan ids per partition")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON result, no progress bar")] = False,
) -> None:
    """Close a business date (or resume its close); refuses a date closed or skipped."""
    from mobilend.api.audit_cli import cli_actor
    from mobilend.db.session import engine_for, is_postgres, session_factory
    from mobilend.settings import get_settings

    settings = get_settings()
    size = partition_size or settings.close_partition_size
    today = _today()
    try:
        day = _date(business_date, today)
        engine = engine_for(settings.database_url)
        sessions = session_factory(engine)
        with cli_actor("close run"):
            if in_process or not is_postgres(engine):
                result = _in_process(sessions, day, today, size, settings.data_dir, json_out)
            else:
                count = settings.close_workers if workers is None else workers
                result = _distributed(sessions, day, today, size, count, json_out)
    except MobilendError as exc:
        fail(exc)
    echo(result) if json_out else console.print(_summary(result))
    if result.get("status") != "done":
        raise typer.Exit(1)


def _date(text: str | None, today: date) -> date:
    from mobilend.core.errors import ValidationFailed

    if text is not None:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationFailed("date", "iso-date", f"not a YYYY-MM-DD date: {text!r}") from None
    from mobilend.servicing import close

    last = run(close.last_closed)
    return today - timedelta(days=1) if last is None else last + timedelta(days=1)


def _bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]close {task.fields[day]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks · {task.fields[loans]} loans"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,  # --json: no bar, only the result
    )


def _in_process(
    sessions: Any, day: date, today: date, size: int, data_dir: Any, quiet: bool
) -> dict[str, Any]:
    from mobilend.servicing import close

    with _bar(quiet) as bar:
        task = bar.add_task("close", total=None, day=day, loans=0)

        def progress(status: dict[str, Any]) -> None:
            bar.update(
                task,
                total=status.get("tasks_total"),
                completed=status.get("tasks_done"),
                loans=status.get("loans_done", 0),
            )

        return close.run_in_process(
            sessions,
            business_date=day,
            today=today,
            clock=_now,
            requested_by=f"cli:{os.getpid()}",
            data_dir=data_dir,
            partition_size=size,
            progress=progress,
        )


def _distributed(
    sessions: Any, day: date, today: date, size: int, workers: int, quiet: bool
) -> dict[str, Any]:
    from mobilend.db.session import unit_of_work
    from mobilend.servicing import close, tasks

    with unit_of_work(sessions) as session:
        deferred = tasks.defer_close(
            session,
            business_date=day,
            today=today,
            now=_now(),
            requested_by=f"cli:{os.getpid()}",
            partition_size=size,
        )
    if deferred["status"] == "done":
        with unit_of_work(sessions) as session:
            return close.close_status(session, day) or deferred
    procs = [_spawn_worker() for _ in range(workers)]
    try:
        return _follow(sessions, day, quiet, after_job_id=int(deferred["after_job_id"]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def _spawn_worker() -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "mobilend.cli", "worker", "--queue", "close"]
    return subprocess.Popen(args, env=os.environ.copy())


def _follow(sessions: Any, day: date, quiet: bool, *, after_job_id: int) -> dict[str, Any]:
    from mobilend.db.session import unit_of_work
    from mobilend.servicing import close, tasks

    with _bar(quiet) as bar:
        task = bar.add_task("close", total=None, day=day, loans=0)
        while True:
            with unit_of_work(sessions) as session:
                status = close.close_status(session, day) or {}
                failed = tasks.failed_jobs(session, day, after_job_id=after_job_id)
            bar.update(
                task,
                total=status.get("tasks_total"),
                completed=status.get("tasks_done"),
                loans=status.get("loans_done", 0),
            )
            if status.get("status") == "done":
                return status
            if failed:
                return status | {"failed_jobs": failed}
            time.sleep(0.5)


def _summary(result: dict[str, Any]) -> str:
    lines = [
        f"close {result.get('business_date')}: {result.get('status')}",
        f"  loans {result.get('loans_done')} of {result.get('loans')} in "
        f"{result.get('partitions_done')}/{result.get('partitions')} partitions",
        f"  steps {result.get('steps')}",
        f"  workers {', '.join(result.get('workers') or [])}",
    ]
    if result.get("failed_jobs"):
        lines.append(f"  FAILED jobs: {result['failed_jobs']} (see the workers' logs)")
    return "\n".join(lines)


@close_app.command("status")
def status(
    business_date: Annotated[str | None, typer.Option("--date", help="default: the latest")] = None,
) -> None:
    """A close's progress as JSON (the latest close by default)."""
    from mobilend.servicing import close

    day = date.fromisoformat(business_date) if business_date else None
    result = run(lambda s: close.close_status(s, day))
    if result is None:
        console.print("no close found")
        raise typer.Exit(1)
    echo(result)


@close_app.command("list")
def list_runs(limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """The latest closes, newest first (JSON lines)."""
    from mobilend.servicing import close

    for row in run(lambda s: close.list_runs(s, limit=limit)):
        echo(row)


def worker(
    queue: Annotated[
        list[str] | None, typer.Option("--queue", help="close, notify (default: all)")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 1,
    until_idle: Annotated[bool, typer.Option(help="exit when no job is left")] = False,
) -> None:
    """Run a task worker (PostgreSQL): close partitions and steps, schedule, relay."""
    from mobilend.servicing import tasks
    from mobilend.settings import get_settings

    tasks.run_worker(
        get_settings().database_url, queues=queue, concurrency=concurrency, until_idle=until_idle
    )
