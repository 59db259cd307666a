"""The operators' audit trail: who did what, to which rows, from where (docs/audit-trail.md).

Who: a request's context (`AuditContext`) lives in a context variable. The HTTP middleware
(`audit_api.AuditMiddleware`) opens it with the client's address, user agent, method and path;
`auth.require` fills in the principal (credential id, name, role), the route template and the
permission. Outside HTTP, `acting_as(name, role)` opens one. With no context, or one without an
actor, nothing is recorded: services called by tests or jobs leave no audit rows.

What: session hooks (installed on every session factory next to the transparency-log hooks)
note, after each flush, the inserted, updated and deleted rows of audited tables with the
changed columns' before and after values, and write one `change` row for each just before the
transaction commits, so a change commits exactly when its audit rows do. Personal-data and
secret columns are recorded as changed, never with their values (`is_masked`).

Failed authorisation (401, 403) is recorded at once, in a transaction of its own
(`auth_failed`); the request rows (`request`, `read`) are written by the middleware after the
response, also in their own transaction (`record_request`).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Numeric, event, inspect, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from mobilend.api.audit_models import AuditEvent
from mobilend.db.session import unit_of_work

if TYPE_CHECKING:
    from fastapi import Request

    from mobilend.api.auth import Principal

log = logging.getLogger(__name__)

# Technical or append-only tables whose rows are not operator actions (or are their own trail).
EXCLUDED_TABLES = frozenset(
    {
        "audit_events",
        "idempotency_records",
        "log_pending",
        "log_entries",
        "log_nodes",
        "log_head",
        "log_tree_heads",
        "device_check_ins",
        "outbox_messages",
        "journal_lines",  # folded into their entry's change row (detail.lines)
    }
)
# Personal data stored in clear beside the encrypted columns.
PERSONAL_COLUMNS = frozenset({("borrowers", "birth_date"), ("borrowers", "gender")})
MAX_ROWS_PER_TABLE = 200  # more changed rows of one table and action in a commit: one summary
PII_ROUTE_PREFIX = "/v1/borrowers"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LARGE_VALUE = 4096  # characters or bytes: larger values are recorded by digest
TOKEN_PREFIX_CHARS = 12  # of the SHA-256 (hex) of a refused token; never the token

_PENDING = "audit_pending_changes"


@dataclass
class AuditContext:
    """One request (or CLI command): where it came from and, once authenticated, who made it."""

    correlation_id: str
    source: str = "api"
    ip: str | None = None
    user_agent: str | None = None
    method: str | None = None
    path: str | None = None
    route: str | None = None
    permission: str | None = None
    actor: str | None = None
    credential_id: int | None = None
    role: str | None = None
    auth_recorded: bool = False  # a failed attempt was written: no request row follows
    replayed: bool = False  # an idempotent replay: the stored response, no new change
    pii_read: bool = False
    borrowers_read: list[int] = field(default_factory=list)
    borrower_in_path: str | None = None

    @property
    def action(self) -> str:
        return f"{self.method} {self.route or self.path}"

    def who(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "source": self.source,
            "actor": self.actor,
            "credential_id": self.credential_id,
            "role": self.role,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "permission": self.permission,
        }


_current: ContextVar[AuditContext | None] = ContextVar("mobilend_audit", default=None)


def current() -> AuditContext | None:
    return _current.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def opened(ctx: AuditContext) -> Iterator[AuditContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@contextmanager
def acting_as(
    name: str, role: str, *, source: str = "cli", command: str | None = None
) -> Iterator[AuditContext]:
    """Record the changes made inside as done by `name` in `role` (CLI commands, scripts)."""
    ctx = AuditContext(new_correlation_id(), source=source, route=command)
    ctx.actor, ctx.role = name, role
    with opened(ctx):
        yield ctx


def outcome_of(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "forbidden"
    if status >= 500:
        return "error"
    return "refused" if status >= 400 else "ok"


# ------------------------------------------------------------------ called by auth.require


def _route(request: Request) -> str | None:
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else None


def _context_for(request: Request) -> AuditContext:
    """The request's context (the middleware's); a fresh one when no middleware opened one."""
    ctx = current()
    if ctx is None:
        client = request.client
        ctx = AuditContext(
            new_correlation_id(),
            ip=client.host if client else None,
            user_agent=(request.headers.get("user-agent") or "")[:256] or None,
            method=request.method,
            path=request.url.path,
        )
    ctx.route = _route(request) or ctx.route
    return ctx


def authenticated(request: Request, principal: Principal, permission: str) -> None:
    """The caller holds a credential whose role grants `permission`: remember who it is."""
    ctx = current()
    if ctx is None:
        return
    ctx.route = _route(request) or ctx.route
    ctx.permission = permission
    ctx.actor, ctx.credential_id, ctx.role = principal.name, principal.credential_id, principal.role
    ctx.pii_read = (ctx.route or "").startswith(PII_ROUTE_PREFIX) and (
        ctx.method == "GET" or ctx.route == f"{PII_ROUTE_PREFIX}/search"
    )
    borrower = request.path_params.get("borrower_id")
    ctx.borrower_in_path = None if borrower is None else str(borrower)[:64]


def auth_failed(
    request: Request,
    *,
    status: int,
    reason: str,
    permission: str,
    token: str | None = None,
    principal: Principal | None = None,
) -> None:
    """Record a refused attempt (401 or 403) in its own transaction, before the refusal."""
    ctx = _context_for(request)
    ctx.permission = permission
    if principal is not None:
        ctx.actor, ctx.credential_id, ctx.role = (
            principal.name,
            principal.credential_id,
            principal.role,
        )
    detail: dict[str, Any] = {"reason": reason}
    if token:
        digest = hashlib.sha256(token.encode()).hexdigest()
        detail["token_sha256_prefix"] = digest[:TOKEN_PREFIX_CHARS]
    row = AuditEvent(
        occurred_at=datetime.now(UTC),
        kind="auth",
        action=ctx.action,
        outcome=outcome_of(status),
        status_code=status,
        detail=detail,
        **ctx.who(),
    )
    try:
        with unit_of_work(request.app.state.sessions) as session:
            session.add(row)
        ctx.auth_recorded = True
    except Exception:  # the refusal stands even when the trail cannot be written
        log.exception("could not record a failed authorisation attempt")


# ------------------------------------------------------------------ request and read rows


def request_kind(ctx: AuditContext) -> str | None:
    """The row a finished request gets: an operator's state-changing request or personal-data
    read (refused ones included); none for other reads, unauthenticated callers, or a refusal
    already recorded by `auth_failed`."""
    if ctx.auth_recorded or ctx.actor is None:
        return None
    if ctx.pii_read:
        return "read"
    return "request" if ctx.method in STATE_CHANGING else None


def record_request(factory: sessionmaker[Session], ctx: AuditContext, status: int) -> None:
    """After the response: write the request's row (`request_kind`), if it gets one."""
    kind = request_kind(ctx)
    if kind is None:
        return
    detail: dict[str, Any] | None = {"replayed": True} if ctx.replayed else None
    table = record_id = None
    if kind == "read":
        ids = sorted(set(ctx.borrowers_read))
        detail = {"borrower_ids": ids}
        table = "borrowers"
        record_id = str(ids[0]) if len(ids) == 1 else ctx.borrower_in_path
    row = AuditEvent(
        occurred_at=datetime.now(UTC),
        kind=kind,
        action=ctx.action,
        outcome=outcome_of(status),
        status_code=status,
        table_name=table,
        record_id=record_id,
        detail=detail,
        **ctx.who(),
    )
    with unit_of_work(factory) as session:
        session.add(row)


def _borrower_loaded(target: Any, _context: Any) -> None:
    ctx = current()
    if ctx is not None and ctx.pii_read:
        ctx.borrowers_read.append(target.id)


def _install_read_hook() -> None:
    from mobilend.origination.models import Borrower

    if not event.contains(Borrower, "load", _borrower_loaded):
        event.listen(Borrower, "load", _borrower_loaded)


# ------------------------------------------------------------------ change rows (session hooks)


def is_masked(table: str, column: str) -> bool:
    """Personal data and secrets: recorded as changed, never with a value."""
    return (
        column.endswith(("_enc", "_index", "code_hash"))
        or column == "token_hash"
        or "public_key" in column
        or (table, column) in PERSONAL_COLUMNS
    )


def plain(value: Any) -> Any:
    """A JSON value: Decimal and dates as strings, bytes as hex."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


@dataclass
class _Change:
    transaction: SessionTransaction | None
    table: str
    action: str
    record_id: str
    changes: dict[str, Any]
    detail: dict[str, Any] | None = None


def _record_id(state: Any) -> str:
    mapper = state.mapper
    keys = [mapper.get_property_by_column(col).key for col in mapper.primary_key]
    return "/".join(str(plain(state.dict.get(key))) for key in keys)


def _stored(column: Any, value: Any) -> Any:
    """A Decimal as its column stores it (a money column's 0 is 0.00), then plain; a large
    text or binary value (a document, an envelope) as its SHA-256 and size."""
    if isinstance(value, str) and len(value) > LARGE_VALUE:
        value = value.encode()
    if isinstance(value, bytes) and len(value) > LARGE_VALUE:
        return {"sha256": hashlib.sha256(value).hexdigest(), "size": len(value)}
    scale = getattr(column.type, "scale", None)
    if isinstance(value, Decimal) and isinstance(column.type, Numeric) and scale is not None:
        value = value.quantize(Decimal(1).scaleb(-scale))
    return plain(value)


def _diff(state: Any, action: str) -> dict[str, Any]:
    table = state.mapper.local_table.name
    out: dict[str, Any] = {}
    for prop in state.mapper.column_attrs:
        column = prop.columns[0].name
        if action == "update":
            history = state.attrs[prop.key].history
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before == after:
                continue
        elif prop.key not in state.dict:  # not loaded (a server default): nothing to show
            continue
        elif action == "insert":
            before, after = None, state.dict[prop.key]
            if after is None:
                continue
        else:
            before, after = state.dict[prop.key], None
        if is_masked(table, column):
            out[column] = {"changed": True}
        else:
            col = prop.columns[0]
            out[column] = {"before": _stored(col, before), "after": _stored(col, after)}
    return out


def _after_flush(session: Session, _context: Any) -> None:
    ctx = current()
    if ctx is None or ctx.actor is None:
        return
    from mobilend.ledger.models import JournalLine

    transaction = session.get_nested_transaction() or session.get_transaction()
    pending: list[_Change] = session.info.setdefault(_PENDING, [])
    lines: dict[int, list[list[Any]]] = {}
    for action, objects in (
        ("insert", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            if isinstance(obj, JournalLine) and action == "insert":
                line = [obj.account, obj.loan_id, plain(obj.currency), plain(obj.amount)]
                lines.setdefault(obj.entry_id, []).append(line)
                continue
            state = inspect(obj)
            table = state.mapper.local_table.name
            if table in EXCLUDED_TABLES:
                continue
            changes = _diff(state, action)
            if action == "update" and not changes:
                continue
            pending.append(_Change(transaction, table, action, _record_id(state), changes))
    _fold_lines(pending, lines, transaction)


def _fold_lines(
    pending: list[_Change], lines: dict[int, list[list[Any]]], tx: SessionTransaction | None
) -> None:
    """Journal lines go on their entry's change row (or one row per entry when it is older)."""
    for entry_id, entry_lines in lines.items():
        entry_lines.sort(key=lambda line: [str(part) for part in line])
        detail = {"lines": entry_lines}
        for change in pending:
            if change.table == "journal_entries" and change.record_id == str(entry_id):
                change.detail = {**(change.detail or {}), **detail}
                break
        else:
            pending.append(_Change(tx, "journal_lines", "insert", str(entry_id), {}, detail))


def _merged(pending: list[_Change]) -> list[_Change]:
    """One row per record and commit: later updates fold into the insert or update before."""
    out: list[_Change] = []
    last: dict[tuple[str, str], _Change] = {}
    for change in pending:
        key = (change.table, change.record_id)
        prior = last.get(key)
        if change.action != "update" or prior is None or prior.action == "delete":
            last[key] = change
            out.append(change)
            continue
        for column, diff in change.changes.items():
            earlier = prior.changes.get(column)
            if earlier is None or "after" not in diff or "after" not in earlier:
                prior.changes[column] = earlier or diff  # new, or masked: stays masked
                continue
            if prior.action == "update" and earlier["before"] == diff["after"]:
                del prior.changes[column]  # changed and changed back
            else:
                prior.changes[column] = {"before": earlier["before"], "after": diff["after"]}
    return [c for c in out if c.changes or c.detail or c.action != "update"]


def _summarized(pending: list[_Change]) -> list[_Change]:
    """At most MAX_ROWS_PER_TABLE rows per table and action; larger groups become one row."""
    groups: dict[tuple[str, str], list[_Change]] = {}
    for change in pending:
        groups.setdefault((change.table, change.action), []).append(change)
    out: list[_Change] = []
    for (table, action), changes in groups.items():
        if len(changes) <= MAX_ROWS_PER_TABLE:
            out.extend(changes)
            continue
        ids = [c.record_id for c in changes]
        detail = {"summarized": True, "rows": len(ids), "record_ids": ids[:MAX_ROWS_PER_TABLE]}
        out.append(_Change(None, table, action, "*", {}, detail))
    return out


def _before_commit(session: Session) -> None:
    ctx = current()
    if ctx is None or ctx.actor is None:
        return
    session.flush()
    pending: list[_Change] = session.info.pop(_PENDING, [])
    if not pending:
        return
    at = datetime.now(UTC)
    who = ctx.who()
    for change in _summarized(_merged(pending)):
        session.add(
            AuditEvent(
                occurred_at=at,
                kind="change",
                action=change.action,
                outcome="ok",
                table_name=change.table,
                record_id=change.record_id,
                changes=change.changes or None,
                detail=change.detail,
                **who,
            )
        )


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending: list[_Change] | None = session.info.get(_PENDING)
    if not pending:
        return
    if not previous.nested:  # the whole transaction is gone
        session.info.pop(_PENDING, None)
        return
    pending[:] = [c for c in pending if not _within(c.transaction, previous)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (already written) or abandoned
        session.info.pop(_PENDING, None)


def install(factory: sessionmaker[Session]) -> None:
    """Record operators' changes in the sessions of `factory` (db.session.session_factory)."""
    _install_read_hook()
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_soft_rollback", _after_soft_rollback)
    event.listen(factory, "after_transaction_end", _after_transaction_end)


# ------------------------------------------------------------------ queries


def list_events(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    table: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
    kind: str | None = None,
    correlation_id: str | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    order: str = "desc",
    limit: int = 100,
) -> list[AuditEvent]:
    """Events matching every filter given; `order` desc (newest first) or asc, by id."""
    q = select(AuditEvent)
    for column, value in (
        (AuditEvent.actor, actor),
        (AuditEvent.action, action),
        (AuditEvent.table_name, table),
        (AuditEvent.record_id, record_id),
        (AuditEvent.outcome, outcome),
        (AuditEvent.kind, kind),
        (AuditEvent.correlation_id, correlation_id),
    ):
        if value is not None:
            q = q.where(column == value)
    if since is not None:
        q = q.where(AuditEvent.occurred_at >= _utc(since))
    if until is not None:
        q = q.where(AuditEvent.occurred_at < _utc(until))
    if after_id is not None:
        q = q.where(AuditEvent.id > after_id)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    q = q.order_by(AuditEvent.id.asc() if order == "asc" else AuditEvent.id.desc())
    return list(session.scalars(q.limit(limit)))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def event_json(ev: AuditEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
        "correlation_id": ev.correlation_id,
        "kind": ev.kind,
        "action": ev.action,
        "outcome": ev.outcome,
        "status_code": ev.status_code,
        "actor": ev.actor,
        "credential_id": ev.credential_id,
        "role": ev.role,
        "source": ev.source,
        "ip": ev.ip,
        "user_agent": ev.user_agent,
        "method": ev.method,
        "route": ev.route,
        "path": ev.path,
        "permission": ev.permission,
        "table": ev.table_name,
        "record_id": ev.record_id,
        "changes": ev.changes,
        "detail": ev.detail,
    }
