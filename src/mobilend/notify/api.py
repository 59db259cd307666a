"""HTTP: the outbox as operators see it (GET /v1/notifications)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from mobilend.api.auth import Principal, require
from mobilend.db.session import unit_of_work
from mobilend.notify.outbox import list_messages, message_json

router = APIRouter(prefix="/v1")


@router.get("/notifications", tags=["notifications"])
def list_notifications(
    request: Request,
    status: str | None = None,
    loan_id: int | None = None,
    before_id: int | None = None,
    limit: int = Query(default=50, ge=1, le=1000),
    _: Principal = require("loans:read"),
) -> Any:
    """Outbox messages newest first: status, attempts, the masked recipient, the last error.

    Message parameters are not shown (a contract's signing code is one of them).
    """
    with unit_of_work(request.app.state.sessions) as session:
        rows = list_messages(
            session, status=status, loan_id=loan_id, before_id=before_id, limit=limit
        )
        return [message_json(m) for m in rows]
