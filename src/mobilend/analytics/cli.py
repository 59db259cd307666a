"""`mobilend portfolio ...`: PAR and NPL, roll rates, vintages, collection rate.

Rich tables by default; `--json` prints the same JSON as the HTTP API. Errors: JSON on stderr,
exit 2 (cli_common).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mobilend.cli_common import echo, fail, run
from mobilend.core.errors import MobilendError, ValidationFailed

portfolio_app = typer.Typer(
    help="Portfolio figures: PAR, NPL, roll rates, vintages, collection rate.",
    no_args_is_help=True,
)
out = Console()

AsOf = Annotated[str | None, typer.Option("--as-of", help="business date (default: today)")]
Product = Annotated[str | None, typer.Option("--product", help="only this product code")]
Currency = Annotated[str | None, typer.Option(help="only loans in this currency")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _date(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(ValidationFailed(name, "iso-date", f"{name} must be a date YYYY-MM-DD, got {text!r}"))


def _today(text: str | None) -> date:
    day = _date(text, "as_of")
    if day is not None:
        return day
    from mobilend.core.clock import SystemClock
    from mobilend.settings import get_settings

    return SystemClock(get_settings().timezone).today()


def _scope(product: str | None, currency: str | None) -> Any:
    from mobilend.analytics.service import Scope

    try:
        return Scope(product, currency)
    except MobilendError as exc:
        fail(exc)


def _ratio(value: str | None) -> str:
    return "-" if value is None else value


@portfolio_app.command("summary")
def summary(
    as_of: AsOf = None,
    product: Product = None,
    currency: Currency = None,
    par: Annotated[
        list[int] | None, typer.Option("--par", help="PAR threshold in days, repeatable")
    ] = None,
    as_json: Json = False,
) -> None:
    """PAR(n) and NPL ratio at the last close, with loans and amounts by bucket and tier."""
    from mobilend.analytics import api, service

    day, scope = _today(as_of), _scope(product, currency)
    days = par or service.DEFAULT_PAR_DAYS
    result = api.summary_json(
        run(lambda s: service.summary(s, as_of=day, scope=scope, par_days=days))
    )
    if as_json:
        echo(result)
        return
    source = f"close of {result['close_date']} ({result['source']})"
    closed = source if result["close_date"] else "no close yet"
    out.print(f"as of {result['as_of']}: {closed}, currency {result['currency'] or '-'}")
    pars = "  ".join(f"PAR{n} {_ratio(r)}" for n, r in result["par"].items())
    out.print(f"{pars}  NPL {_ratio(result['npl_ratio'])} ({result['npl_principal']})")
    for title, key, rows in (
        ("By bucket", "bucket", result["by_bucket"]),
        ("By five-tier class", "loan_class", result["by_class"]),
    ):
        table = Table(title=title)
        for column in (key, "loans", "outstanding principal", "exposure", "provision"):
            table.add_column(column, justify="left" if column == key else "right")
        for row in [*rows, {key: "total", **result}]:
            table.add_row(
                row[key],
                str(row["loans"]),
                row["outstanding_principal"],
                row["exposure"] or "-",
                row["provision"] or "-",
            )
        out.print(table)


@portfolio_app.command("roll-rates")
def roll_rates(
    as_of: AsOf = None,
    previous: Annotated[
        str | None, typer.Option(help="earlier month-end snapshot (default: the one before)")
    ] = None,
    product: Product = None,
    currency: Currency = None,
    by_count: Annotated[bool, typer.Option("--by-count", help="rates by count")] = False,
    as_json: Json = False,
) -> None:
    """Roll rates between two month-end snapshots (rows: bucket then; columns: bucket now)."""
    from mobilend.analytics import api, service

    day, before, scope = _today(as_of), _date(previous, "previous"), _scope(product, currency)
    result = api.roll_json(
        run(lambda s: service.roll_rates(s, as_of=day, previous=before, scope=scope))
    )
    if as_json:
        echo(result)
        return
    key = "count_rates" if by_count else "rates"
    table = Table(title=f"Roll rates {result['previous']} -> {result['current']} ({key})")
    table.add_column("from")
    table.add_column("loans", justify="right")
    table.add_column("balance", justify="right")
    for column in result["columns"]:
        table.add_column(column, justify="right")
    for row in result["rows"]:
        rates = [_ratio(row[key][c]) for c in result["columns"]]
        table.add_row(row["bucket"], str(row["loans"]), row["balance"], *rates)
    out.print(table)
    out.print(f"new loans: {result['new_count']} ({result['new_balance']})")


@portfolio_app.command("vintages")
def vintages(
    as_of: AsOf = None,
    threshold: Annotated[int, typer.Option(help="days past due that count as bad")] = 30,
    cumulative: Annotated[bool, typer.Option(help="ever past the threshold")] = False,
    product: Product = None,
    currency: Currency = None,
    by_count: Annotated[bool, typer.Option("--by-count", help="shares by count")] = False,
    as_json: Json = False,
) -> None:
    """Vintage curves: each disbursement month's share past the threshold by month on book."""
    from mobilend.analytics import api, service

    day, scope = _today(as_of), _scope(product, currency)
    found = run(
        lambda s: service.vintages(
            s, as_of=day, threshold_days=threshold, cumulative=cumulative, scope=scope
        )
    )
    result = api.vintages_json(found)
    if as_json:
        echo(result)
        return
    key = "count_share" if by_count else "amount_share"
    mobs = sorted({m["mob"] for c in result["cohorts"] for m in c["months_on_book"]})
    table = Table(title=f"Vintages {result['threshold_days']}+ DPD ({key}), as of {day}")
    for column in ("cohort", "loans", "principal", *(f"MOB {m}" for m in mobs)):
        table.add_column(column, justify="left" if column == "cohort" else "right")
    for cohort in result["cohorts"]:
        shares = {m["mob"]: m[key] for m in cohort["months_on_book"]}
        cells = [shares.get(m, "") for m in mobs]
        table.add_row(cohort["cohort"], str(cohort["loans"]), cohort["principal"], *cells)
    out.print(table)


@portfolio_app.command("collection-rate")
def collection_rate(
    start: Annotated[str, typer.Option(help="first due date of the period")],
    end: Annotated[str, typer.Option(help="last due date of the period")],
    as_of: AsOf = None,
    product: Product = None,
    currency: Currency = None,
    as_json: Json = False,
) -> None:
    """Amount due in the period and collected against it by as_of."""
    from mobilend.analytics import api, service

    first, last = _date(start, "start"), _date(end, "end")
    assert first is not None and last is not None
    day, scope = _today(as_of), _scope(product, currency)
    found = run(lambda s: service.collection_rate(s, start=first, end=last, as_of=day, scope=scope))
    result = api.collection_json(found)
    if as_json:
        echo(result)
        return
    table = Table(title=f"Collection rate {result['start']} .. {result['end']}, as of {day}")
    for column in ("installments", "amount due", "collected", "uncollected", "rate"):
        table.add_column(column, justify="right")
    table.add_row(
        str(result["installments"]),
        result["amount_due"],
        result["collected"],
        result["uncollected"],
        _ratio(result["collection_rate"]),
    )
    out.print(table)
