"""The `mobilend` command line. Names and JSON shapes here are a stable, scripted interface."""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mobilend.analytics.cli import portfolio_app
from mobilend.api.audit_cli import audit_app, cli_actor
from mobilend.collateral.cli import collateral_app, devices_app
from mobilend.collections.cli import collections_app
from mobilend.core.errors import MobilendError, ValidationFailed
from mobilend.core.money import RoundingMode, parse_amount
from mobilend.decisioning.model_cli import model_app
from mobilend.notify.cli import notify_app
from mobilend.servicing.cli import close_app, worker
from mobilend.settings import get_settings
from mobilend.trust.cli import log_app
from mobilend.trust.contract_cli import contracts_app

app = typer.Typer(help="Mobilend: lending platform for mobile-phone loans.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
cred_app = typer.Typer(help="API credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cred_app, name="credentials")
app.add_typer(model_app, name="model", help="Credit models: train, score, report.")
app.add_typer(collateral_app, name="collateral")
app.add_typer(log_app, name="log")
app.add_typer(devices_app, name="devices")
app.add_typer(audit_app, name="audit")
app.add_typer(contracts_app, name="contracts")
app.add_typer(collections_app, name="collections")
app.add_typer(notify_app, name="notify")
app.add_typer(portfolio_app, name="portfolio")
app.add_typer(close_app, name="close")
app.command("worker")(worker)
err = Console(stderr=True)


class ScheduleOpt(StrEnum):
    annuity = "annuity"
    equal_principal = "equal-principal"
    interest_only = "interest-only"
    bullet = "bullet"
    flat = "flat"


class InterestPeriodOpt(StrEnum):
    repayment = "repayment"
    daily = "daily"


class DayCountOpt(StrEnum):
    act365 = "act/365"
    act360 = "act/360"
    d30360 = "30/360"
    actact = "act/act"


class InstallmentRoundingOpt(StrEnum):
    nearest = "nearest"
    ceiling = "ceiling"


class RoundingOpt(StrEnum):
    half_even = "half_even"
    half_up = "half_up"


class InterestMethodOpt(StrEnum):
    declining = "declining"
    flat = "flat"


class BusinessDayOpt(StrEnum):
    none = "none"
    next = "next"
    previous = "previous"


class UpfrontFeeOpt(StrEnum):
    deducted = "deducted"
    financed = "financed"


def _fail(exc: MobilendError, as_json: bool) -> None:
    if as_json:
        problem = {
            "type": exc.type,
            "title": exc.title,
            "detail": exc.detail,
            "field": exc.field,
            "rule": exc.rule,
        }
        typer.echo(json.dumps({"error": problem}, ensure_ascii=False), err=True)
    else:
        err.print(f"[red]error[/red] {exc.field or ''}: {exc.detail}")
    raise typer.Exit(2)


@app.command()
def quote(
    principal: Annotated[str, typer.Option(help="Loan principal, e.g. 5000")],
    annual_rate: Annotated[str, typer.Option(help="Nominal annual rate in percent, e.g. 12")],
    periods: Annotated[int, typer.Option(help="Number of repayment periods")],
    start: Annotated[str, typer.Option(help="Disbursement date YYYY-MM-DD")],
    frequency: Annotated[
        str,
        typer.Option(
            help="daily|weekly|biweekly|semimonthly|monthly|quarterly|every-N-days|every-N-weeks|every-N-months"
        ),
    ] = "monthly",
    schedule: Annotated[
        ScheduleOpt, typer.Option(help="Repayment schedule type")
    ] = ScheduleOpt.annuity,
    interest_period: Annotated[
        InterestPeriodOpt,
        typer.Option(help="repayment: rate/periods-per-year; daily: by day count"),
    ] = InterestPeriodOpt.repayment,
    day_count: Annotated[
        DayCountOpt, typer.Option(help="Day count for daily interest")
    ] = DayCountOpt.act365,
    installment_multiple: Annotated[
        str, typer.Option(help="Round installments to this multiple")
    ] = "0.01",
    installment_rounding: Annotated[
        InstallmentRoundingOpt, typer.Option()
    ] = InstallmentRoundingOpt.nearest,
    rounding: Annotated[RoundingOpt, typer.Option(help="Rounding mode")] = RoundingOpt.half_even,
    principal_grace: Annotated[int, typer.Option(help="Interest-only periods at the start")] = 0,
    interest_free: Annotated[int, typer.Option(help="Interest-free periods at the start")] = 0,
    interest_method: Annotated[
        InterestMethodOpt, typer.Option(help="declining balance or flat rate")
    ] = InterestMethodOpt.declining,
    upfront_fee: Annotated[str, typer.Option(help="Upfront fee amount")] = "0",
    upfront_fee_treatment: Annotated[UpfrontFeeOpt, typer.Option()] = UpfrontFeeOpt.deducted,
    installment_fee: Annotated[str, typer.Option(help="Fee added to every installment")] = "0",
    business_day: Annotated[
        BusinessDayOpt, typer.Option(help="Move due dates off non-business days")
    ] = BusinessDayOpt.none,
    calendar: Annotated[str, typer.Option(help="Holiday calendar (country code)")] = "CN",
    first_due: Annotated[
        str | None, typer.Option(help="First due date YYYY-MM-DD (odd first period)")
    ] = None,
    currency: Annotated[str, typer.Option()] = "CNY",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Quote a loan: the full schedule and the annualized rate by IRR (simple and compound)."""
    from mobilend.loans.quoting import quote as make_quote
    from mobilend.loans.quoting import quote_json
    from mobilend.loans.terms import (
        BusinessDayRule,
        DayCount,
        Frequency,
        InstallmentRounding,
        InterestPeriod,
        LoanTerms,
        ScheduleType,
        UpfrontFeeTreatment,
    )

    try:
        kind = (
            ScheduleType.FLAT
            if interest_method is InterestMethodOpt.flat
            else ScheduleType(schedule.value.replace("-", "_"))
        )
        try:
            freq = Frequency.parse(frequency)
        except ValueError as exc:
            raise ValidationFailed("frequency", "known-frequency", str(exc)) from None
        terms = LoanTerms(
            principal=parse_amount(principal, field="principal"),
            annual_rate=_decimal(annual_rate, "annual_rate") / 100,
            periods=periods,
            frequency=freq,
            start=_date(start, "start"),
            schedule=kind,
            interest_period=InterestPeriod(interest_period.value),
            day_count=DayCount(day_count.value),
            currency=currency.upper(),
            installment_multiple=_decimal(installment_multiple, "installment_multiple"),
            installment_rounding=InstallmentRounding(installment_rounding.value),
            rounding=RoundingMode(rounding.value),
            principal_grace_periods=principal_grace,
            interest_free_periods=interest_free,
            upfront_fee=parse_amount(upfront_fee, field="upfront_fee", allow_zero=True),
            upfront_fee_treatment=UpfrontFeeTreatment(upfront_fee_treatment.value),
            installment_fee=parse_amount(installment_fee, field="installment_fee", allow_zero=True),
            business_day_rule=BusinessDayRule(business_day.value),
            calendar=calendar,
            first_due_date=_date(first_due, "first_due") if first_due else None,
        )
        if terms.installment_multiple <= 0:
            raise ValidationFailed(
                "installment_multiple", "positive", "installment_multiple must be positive"
            )
        result = quote_json(make_quote(terms))
    except MobilendError as exc:
        _fail(exc, as_json)
        return
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_quote(result, terms.currency)


def _print_quote(result: dict[str, Any], currency: str) -> None:
    table = Table(title=f"Schedule ({currency})")
    for col in ("#", "due date", "principal", "interest", "fee", "total", "balance"):
        table.add_column(col, justify="right")
    for i in result["installments"]:
        table.add_row(
            str(i["number"]),
            i["due_date"],
            i["principal"],
            i["interest"],
            i["fee"],
            i["total"],
            i["balance"],
        )
    Console().print(table)
    apr = result["apr"]
    Console().print(
        f"total interest {result['total_interest']}  total payment {result['total_payment']}\n"
        f"annualized rate by IRR: {apr['irr_compound_pct']}% (compound), "
        f"{apr['irr_simple_pct']}% (simple)"
    )


def _decimal(text: str, field: str) -> Decimal:
    try:
        value = Decimal(text)
    except Exception:
        raise ValidationFailed(
            field, "decimal", f"{field} is not a decimal number: {text!r}"
        ) from None
    if not value.is_finite() or value < 0:
        raise ValidationFailed(field, "non-negative", f"{field} must be a non-negative number")
    return value


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            field, "iso-date", f"{field} must be a date YYYY-MM-DD, got {text!r}"
        ) from None


@app.command()
def apr(
    as_json: Annotated[bool, typer.Option("--json", help="Read JSON on stdin, print JSON")] = True,
) -> None:
    """Annualized rate of a cash-flow stream read from stdin (methods irr, regz, eu)."""
    from mobilend.loans.apr import solve_request

    try:
        payload = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        _fail(ValidationFailed("body", "json", f"stdin is not valid JSON: {exc}"), True)
        return
    try:
        result = solve_request(payload)
    except MobilendError as exc:
        _fail(exc, True)
        return
    typer.echo(json.dumps(result))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    settings = get_settings()
    _bootstrap_admin(settings)
    uvicorn.run(
        "mobilend.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        http="mobilend.api.server:NoDelayH11Protocol",
    )


def _bootstrap_admin(settings: Any) -> None:
    """On first start, create an admin credential and write its token to data_dir/admin-token."""
    if not settings.bootstrap_admin:
        return
    from sqlalchemy import func, select

    from mobilend.api.auth import create_credential
    from mobilend.api.models import ApiCredential
    from mobilend.db.session import build_engine, session_factory, unit_of_work

    engine = build_engine(settings.database_url)
    with unit_of_work(session_factory(engine)) as session:
        if session.scalar(select(func.count()).select_from(ApiCredential)):
            engine.dispose()
            return
        _, token = create_credential(session, name="bootstrap-admin", role="admin")
    engine.dispose()
    path = settings.data_dir / "admin-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    err.print(f"created an admin API credential; its token is in {path}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply database migrations (Alembic) to MOBILEND_DATABASE_URL."""
    from mobilend.db.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    err.print(f"database at {_safe(url)} is at revision {revision}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@cred_app.command("create")
def credentials_create(
    name: Annotated[str, typer.Option(help="Who or what uses it")],
    role: Annotated[str, typer.Option(help="admin | officer | viewer | collector")] = "officer",
) -> None:
    """Create an API credential and print its token once (JSON)."""
    from mobilend.api.auth import create_credential
    from mobilend.db.session import build_engine, session_factory, unit_of_work

    engine = build_engine(get_settings().database_url)
    try:
        with (
            cli_actor("credentials create"),
            unit_of_work(session_factory(engine)) as session,
        ):
            cred, token = create_credential(session, name=name, role=role)
            out = {"id": cred.id, "name": name, "role": role, "token": token}
    except MobilendError as exc:
        _fail(exc, True)
        return
    finally:
        engine.dispose()
    typer.echo(json.dumps(out))


@cred_app.command("list")
def credentials_list() -> None:
    """List API credentials (id, name, role, revoked) as JSON; tokens are never shown again."""
    from sqlalchemy import select

    from mobilend.api.models import ApiCredential
    from mobilend.db.session import build_engine, session_factory, unit_of_work

    engine = build_engine(get_settings().database_url)
    with unit_of_work(session_factory(engine)) as session:
        rows = [
            {"id": c.id, "name": c.name, "role": c.role, "revoked": c.revoked}
            for c in session.scalars(select(ApiCredential).order_by(ApiCredential.id))
        ]
    engine.dispose()
    typer.echo(json.dumps(rows))


@cred_app.command("revoke")
def credentials_revoke(credential_id: Annotated[int, typer.Option("--id")]) -> None:
    """Revoke a credential; running servers refuse it within 30 seconds."""
    from mobilend.api.auth import revoke_credential
    from mobilend.db.session import build_engine, session_factory, unit_of_work

    engine = build_engine(get_settings().database_url)
    try:
        with (
            cli_actor("credentials revoke"),
            unit_of_work(session_factory(engine)) as session,
        ):
            cred = revoke_credential(session, credential_id)
            out = {"id": cred.id, "name": cred.name, "role": cred.role, "revoked": True}
    except MobilendError as exc:
        _fail(exc, True)
        return
    finally:
        engine.dispose()
    typer.echo(json.dumps(out))


if __name__ == "__main__":
    app()
