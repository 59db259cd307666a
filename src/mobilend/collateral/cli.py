"""`mobilend collateral ...`: catalog, price feed, valuation, mark-to-market (JSON out)."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from mobilend.cli_common import echo as _echo
from mobilend.cli_common import fail as _fail
from mobilend.cli_common import run as _run
from mobilend.core.clock import SystemClock
from mobilend.core.errors import MobilendError
from mobilend.settings import get_settings

collateral_app = typer.Typer(
    help="Phone collateral: catalog, prices, valuation, pledges.", no_args_is_help=True
)
err = Console(stderr=True)
T = TypeVar("T")


def _clock() -> SystemClock:
    return SystemClock(get_settings().timezone)


@collateral_app.command("catalog-import")
def catalog_import(
    path: Annotated[
        Path | None, typer.Argument(help="catalog CSV (see docs/collateral.md)")
    ] = None,
    seed: Annotated[bool, typer.Option(help="import the catalog shipped with Mobilend")] = False,
) -> None:
    """Import device models, storage variants and TACs (repeatable: updates in place)."""
    from mobilend.collateral import catalog, service

    if seed == (path is not None):
        _fail(MobilendError("give a CSV path or --seed", field="path"))
    try:
        models = catalog.seed_catalog() if seed else catalog.parse_catalog_csv(path.read_text())  # type: ignore[union-attr]
    except MobilendError as exc:
        _fail(exc)
        return
    _echo(_run(lambda s: service.import_catalog(s, models)))


@collateral_app.command("catalog-list")
def catalog_list() -> None:
    """Print the catalog as JSON."""
    from mobilend.collateral import service
    from mobilend.collateral.api import model_json

    _echo(_run(lambda s: [model_json(m) for m in service.list_models(s)]))


@collateral_app.command("quotes-import")
def quotes_import(
    path: Annotated[Path, typer.Argument(help="quotes file; '-' reads stdin")],
    fmt: Annotated[str, typer.Option("--format", help="csv | json")] = "csv",
) -> None:
    """Import dated price quotes (model_key, storage_gb, grade, price, quoted_on, source)."""
    from mobilend.collateral import prices, service

    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        quotes = prices.parse_quotes_json(text) if fmt == "json" else prices.parse_quotes_csv(text)
    except MobilendError as exc:
        _fail(exc)
        return
    now = _clock().now()
    _echo(_run(lambda s: service.import_quotes(s, quotes, now=now)))


@collateral_app.command("quotes-simulate")
def quotes_simulate(
    model: Annotated[str, typer.Option(help="model key, e.g. apple-iphone-13")],
    storage: Annotated[int, typer.Option(help="storage in GB")],
    grade: Annotated[str, typer.Option(help="mint | excellent | good | fair | poor")] = "good",
    start: Annotated[str, typer.Option(help="first quote date")] = "",
    end: Annotated[str, typer.Option(help="last quote date (default today)")] = "",
    every: Annotated[int, typer.Option(help="days between quote dates")] = 7,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Print a SIMULATED quote feed as CSV (for demos; sources say 'simulated')."""
    from mobilend.collateral import service
    from mobilend.collateral.models import DeviceModel
    from mobilend.collateral.simulate import simulate_quotes

    today = _clock().today()
    last = date.fromisoformat(end) if end else today

    def gen(s: Session) -> list[Any]:
        m = service.get_model(s, model)
        row = s.get(DeviceModel, model)
        first = date.fromisoformat(start) if start else m.release_date
        return list(
            simulate_quotes(m, storage_gb=storage, grade=grade, start=first, end=last,
                            every_days=every, seed=seed,
                            successor_on=row.successor_release_date if row else None)
        )  # fmt: skip

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model_key", "storage_gb", "grade", "price", "quoted_on", "source"])
    for q in _run(gen):
        writer.writerow([q.model_key, q.storage_gb, q.grade, q.price, q.quoted_on, q.source])
    typer.echo(out.getvalue(), nl=False)


@collateral_app.command("value")
def value(
    model: Annotated[str, typer.Option(help="model key")],
    storage: Annotated[int, typer.Option(help="storage in GB")],
    screen: Annotated[str, typer.Option(help="flawless|minor_wear|visible_wear|cracked")],
    body: Annotated[str, typer.Option(help="flawless|minor_wear|visible_wear|dented|cracked")],
    battery: Annotated[int, typer.Option(help="battery health %")],
    failed: Annotated[str, typer.Option(help="failed checks, comma-separated")] = "",
    carrier_locked: Annotated[bool, typer.Option()] = False,
    horizon: Annotated[str, typer.Option(help="forecast date, e.g. the loan's maturity")] = "",
    haircut: Annotated[str, typer.Option()] = "0.20",
) -> None:
    """Value a phone: today's value, the forecast at the horizon and the lending value."""
    from decimal import Decimal

    from mobilend.collateral import grading, service

    today = _clock().today()
    try:
        condition = grading.Condition(
            screen=screen,
            body=body,
            battery_health_pct=battery,
            failed_checks=tuple(f for f in failed.split(",") if f),
            carrier_locked=carrier_locked,
        )
    except MobilendError as exc:
        _fail(exc)
        return
    _echo(
        _run(
            lambda s: service.value_device(
                s,
                model_key=model,
                storage_gb=storage,
                condition=condition,
                as_of=today,
                horizon=date.fromisoformat(horizon) if horizon else today,
                haircut=Decimal(haircut),
            ).as_json()
        )
    )


@collateral_app.command("mark")
def mark(
    business_date: Annotated[str, typer.Option("--date", help="default: today")] = "",
) -> None:
    """Mark every active pledge to market for a business date (idempotent per date)."""
    from mobilend.collateral import marking

    clock = _clock()
    on = date.fromisoformat(business_date) if business_date else clock.today()
    now: datetime = clock.now()
    with err.status(f"marking pledges to market for {on}"):
        counts = _run(lambda s: marking.mark_all(s, on=on, now=now))
    _echo({"business_date": on.isoformat(), **counts})


@collateral_app.command("pledge")
def pledge(pledge_id: Annotated[int, typer.Argument()]) -> None:
    """Show a pledge with its margin calls and events (JSON)."""
    from sqlalchemy import select

    from mobilend.collateral import pledges
    from mobilend.collateral.api import call_json, pledge_json
    from mobilend.collateral.models import CollateralEvent, MarginCall

    def show(s: Session) -> dict[str, Any]:
        p = pledges.get_pledge(s, pledge_id)
        calls = s.scalars(select(MarginCall).where(MarginCall.pledge_id == p.id))
        events = s.scalars(
            select(CollateralEvent)
            .where(CollateralEvent.pledge_id == p.id)
            .order_by(CollateralEvent.id)
        )
        return pledge_json(p) | {
            "margin_calls": [call_json(c) for c in calls],
            "events": [
                {
                    "kind": e.kind,
                    "business_date": e.business_date,
                    "actor": e.actor,
                    "detail": e.detail,
                }
                for e in events
            ],
        }

    _echo(_run(show))


devices_app = typer.Typer(
    help="Device-lock phones: status, commands, policy.", no_args_is_help=True
)


@devices_app.command("status")
def device_status(device_id: Annotated[str, typer.Argument()]) -> None:
    """Last seen, SIM, root/tamper flags, state, offline deadline, open commands (JSON)."""
    from mobilend.collateral import devices

    _echo(_run(lambda s: devices.device_status(s, device_id)))


@devices_app.command("commands")
def device_commands(
    device_id: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option()] = 100,
) -> None:
    """The device's commands, newest first (JSON)."""
    from mobilend.collateral import devices

    _echo(_run(lambda s: devices.list_commands(s, device_id, limit=limit)))


@devices_app.command("command")
def device_command(
    device_id: Annotated[str, typer.Argument()],
    action: Annotated[str, typer.Option(help="lock | unlock | reminder")],
    reason: Annotated[str, typer.Option(help="why (audited)")],
    operator: Annotated[str, typer.Option(help="who issues it (audited)")],
) -> None:
    """Queue a signed command by hand; it holds for the business day (audited)."""
    from mobilend.collateral import devices

    clock = _clock()
    on, now = clock.today(), clock.now()
    data_dir = get_settings().data_dir
    _echo(
        _run(
            lambda s: devices.command_json(
                devices.operator_command(
                    s,
                    device_id=device_id,
                    action=action,
                    reason=reason,
                    actor=operator,
                    on=on,
                    now=now,
                    data_dir=data_dir,
                )
            )
        )
    )


@devices_app.command("policy-run")
def policy_run(
    business_date: Annotated[str, typer.Option("--date", help="default: today")] = "",
) -> None:
    """Apply the lock policy to every enrolled phone (the daily close runs it too)."""
    from mobilend.collateral import devices

    clock = _clock()
    on = date.fromisoformat(business_date) if business_date else clock.today()
    now = clock.now()
    _echo(
        {"business_date": on.isoformat(), **_run(lambda s: devices.run_policy(s, on=on, now=now))}
    )
