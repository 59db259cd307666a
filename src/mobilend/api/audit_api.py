"""The audit trail over HTTP: the middleware that opens each request's audit context and
writes its row after the response, and GET /v1/audit-events (admin only, "audit:read")."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

import anyio
from fastapi import APIRouter, FastAPI, Query, Request
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobilend.api import audit
from mobilend.api.audit_models import Kind, Outcome
from mobilend.api.auth import Principal, require
from mobilend.db.session import unit_of_work

HEADER = "X-Request-Id"
log = logging.getLogger(__name__)


class AuditSettings(BaseSettings):
    """MOBILEND_AUDIT_TRUSTED_PROXIES='["10.0.0.2"]': the addresses of reverse proxies whose
    X-Forwarded-For header is believed. Default none: the address is the TCP peer's."""

    model_config = SettingsConfigDict(env_prefix="MOBILEND_AUDIT_", env_file=".env", extra="ignore")

    trusted_proxies: list[str] = []


def client_address(scope: Scope, trusted: frozenset[str]) -> str | None:
    """The TCP peer; behind trusted proxies, the last X-Forwarded-For hop that is no proxy."""
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    if peer is None or peer not in trusted:
        return peer
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
    )
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return hops[0][:64] if hops else peer


class AuditMiddleware:
    """Opens the request's audit context; after the response, writes its request/read row."""

    def __init__(self, app: ASGIApp, trusted_proxies: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.trusted = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        agent = headers.get(b"user-agent", b"").decode("latin-1")[:256]
        ctx = audit.AuditContext(
            audit.new_correlation_id(),
            ip=client_address(scope, self.trusted),
            user_agent=agent or None,
            method=scope["method"],
            path=scope["path"][:500],
        )
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = list(message.get("headers", []))
                ctx.replayed = (b"idempotent-replayed", b"true") in sent
                message["headers"] = [
                    *sent,
                    (HEADER.lower().encode(), ctx.correlation_id.encode()),
                ]
            await send(message)

        with audit.opened(ctx):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if audit.request_kind(ctx) is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(_record, scope, ctx, status)


def _record(scope: Scope, ctx: audit.AuditContext, status: int) -> None:
    try:
        audit.record_request(scope["app"].state.sessions, ctx, status)
    except Exception:  # the response is gone; the failure is logged, never swallowed silently
        log.exception("could not record the audit row of %s", ctx.action)


def install(app: FastAPI, settings: AuditSettings | None = None) -> None:
    settings = settings or AuditSettings()
    app.add_middleware(AuditMiddleware, trusted_proxies=frozenset(settings.trusted_proxies))


# ------------------------------------------------------------------ GET /v1/audit-events

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit-events")
def list_audit_events(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    table: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: Outcome | None = None,
    kind: Kind | None = None,
    correlation_id: str | None = None,
    after_id: int | None = Query(None, ge=0),
    before_id: int | None = Query(None, ge=1),
    order: Literal["desc", "asc"] = "desc",
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = require("audit:read"),
) -> dict[str, Any]:
    """Audit events, newest first (`order=desc`, page on with `before_id`) or oldest first
    (`order=asc`, page on with `after_id`). `since`/`until`: ISO times (UTC when no zone)."""
    with unit_of_work(request.app.state.sessions) as session:
        events = audit.list_events(
            session,
            actor=actor,
            action=action,
            table=table,
            record_id=record_id,
            since=since,
            until=until,
            outcome=outcome,
            kind=kind,
            correlation_id=correlation_id,
            after_id=after_id,
            before_id=before_id,
            order=order,
            limit=limit,
        )
        out = [audit.event_json(ev) for ev in events]
    cursor = "after_id" if order == "asc" else "before_id"
    following = {cursor: out[-1]["id"]} if len(out) == limit else None
    return {"events": out, "next": following}
