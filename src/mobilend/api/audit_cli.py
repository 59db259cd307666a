"""`mobilend audit list`: the operators' audit trail from the command line (JSON or a table).

Commands that change data run inside `cli_actor(...)`, so their changes are recorded with the
operating-system user as the actor, role "cli" and source "cli" (see `credentials create`).
"""

from __future__ import annotations

import getpass
import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mobilend.api import audit

audit_app = typer.Typer(help="The operators' audit trail.", no_args_is_help=True)


def cli_actor(command: str) -> AbstractContextManager[audit.AuditContext]:
    """Record the changes made inside as done by this OS user from the command line."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        user = "unknown"
    return audit.acting_as(f"os:{user}", "cli", source="cli", command=command)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"not an ISO date or time: {text!r}", param_hint="--since"
        ) from None


@audit_app.command("list")
def list_command(
    actor: Annotated[str | None, typer.Option(help="Credential name")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time (UTC when no zone)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, exclusive")] = None,
    action: Annotated[str | None, typer.Option(help='e.g. "POST /v1/products" or update')] = None,
    table: Annotated[str | None, typer.Option(help="Changed table")] = None,
    record_id: Annotated[str | None, typer.Option(help="Changed record's id")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="ok|refused|error|unauthenticated|forbidden")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="request|change|read|auth")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape)")] = False,
) -> None:
    """Audit events, newest first."""
    from mobilend.db.session import build_engine, session_factory, unit_of_work
    from mobilend.settings import get_settings

    engine = build_engine(get_settings().database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            rows = [
                audit.event_json(ev)
                for ev in audit.list_events(
                    session,
                    actor=actor,
                    since=_since(since),
                    until=_since(until),
                    action=action,
                    table=table,
                    record_id=record_id,
                    outcome=outcome,
                    kind=kind,
                    limit=limit,
                )
            ]
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    _print(rows)


def _print(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Audit events (newest first)")
    for col in ("id", "time (UTC)", "kind", "action", "outcome", "who", "ip", "what"):
        table.add_column(col)
    for r in rows:
        who = f"{r['actor'] or '-'} ({r['role'] or '-'})"
        what = f"{r['table']}#{r['record_id']}" if r["table"] else (r["route"] or "")
        status = f"{r['outcome']} {r['status_code'] or ''}".strip()
        table.add_row(
            str(r["id"]),
            r["occurred_at"][:19],
            r["kind"],
            r["action"],
            status,
            who,
            r["ip"] or "",
            what,
        )
    Console().print(table)
