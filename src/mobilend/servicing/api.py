"""HTTP routes for the daily close: start or resume a close, follow its progress."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mobilend.api.auth import Principal, require
from mobilend.core.errors import NotFound
from mobilend.db.session import is_postgres, unit_of_work
from mobilend.servicing import close

router = APIRouter(prefix="/v1")


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: date | None = None  # default: the day after the last close
    in_process: bool = False  # PostgreSQL: run here instead of deferring to the workers
    partition_size: int | None = Field(default=None, ge=1, le=1_000_000)


@router.post("/close/runs", tags=["close"])
def start_close(body: CloseIn, request: Request, who: Principal = require("close:run")) -> Any:
    """Close a business date, or resume its unfinished close.

    On PostgreSQL the close's jobs are deferred to the task workers (`mobilend worker`) and the
    answer is 202 with the run's status; follow it with GET /v1/close/runs/{date}. On SQLite
    (or with in_process) the close runs during the request and the answer is its final status.
    """
    state = request.app.state
    today: date = state.clock.today()
    size = body.partition_size or state.settings.close_partition_size
    with unit_of_work(state.sessions) as session:
        last = close.last_closed(session)
    day = body.business_date or (
        today - timedelta(days=1) if last is None else last + timedelta(days=1)
    )
    requested_by = f"api:{who.name}"
    if body.in_process or not is_postgres(state.engine):
        return close.run_in_process(
            state.sessions,
            business_date=day,
            today=today,
            clock=state.clock.now,
            requested_by=requested_by,
            data_dir=state.settings.data_dir,
            partition_size=size,
        )
    from mobilend.servicing import tasks

    with unit_of_work(state.sessions) as session:
        tasks.defer_close(
            session,
            business_date=day,
            today=today,
            now=state.clock.now(),
            requested_by=requested_by,
            partition_size=size,
        )
    with unit_of_work(state.sessions) as session:
        status = close.close_status(session, day)
    return JSONResponse(status, status_code=200 if status and status["status"] == "done" else 202)


@router.get("/close/runs", tags=["close"])
def list_closes(
    request: Request,
    limit: int = Query(default=20, ge=1, le=1000),
    _: Principal = require("close:read"),
) -> Any:
    """The latest closes, newest first."""
    with unit_of_work(request.app.state.sessions) as session:
        return close.list_runs(session, limit=limit)


@router.get("/close/runs/{business_date}", tags=["close"])
def close_run(business_date: date, request: Request, _: Principal = require("close:read")) -> Any:
    """A close's progress: partitions and loans done, book-wide steps, workers."""
    with unit_of_work(request.app.state.sessions) as session:
        status = close.close_status(session, business_date)
    if status is None:
        raise NotFound(f"no close for {business_date}", field="business_date")
    return status
