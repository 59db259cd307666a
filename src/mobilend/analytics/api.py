"""HTTP routes for portfolio figures: PAR and NPL, roll rates, vintages, collection rate.

Read-only; the permission is `loans:read` (every operator role holds it). Dates default to
the business date; figures are decimal strings, ratios to 4 decimals (docs/portfolio-analytics.md).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from mobilend.analytics import service
from mobilend.api.auth import Principal, require
from mobilend.core.money import ZERO
from mobilend.db.session import unit_of_work
from mobilend.loans.statement import money

router = APIRouter(prefix="/v1/portfolio", tags=["portfolio"])

AsOf = Annotated[date | None, Query(description="business date (default: today)")]
ProductCode = Annotated[str | None, Query(max_length=40, description="only this product")]
Currency = Annotated[str | None, Query(description="only loans in this currency (ISO 4217)")]


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _tally_json(t: service.Tally) -> dict[str, Any]:
    return {
        "loans": t.loans,
        "outstanding_principal": money(t.outstanding_principal),
        "exposure": None if t.exposure is None else money(t.exposure),
        "provision": None if t.provision is None else money(t.provision),
    }


def summary_json(s: service.Summary) -> dict[str, Any]:
    return {
        "as_of": s.as_of.isoformat(),
        "close_date": None if s.close_date is None else s.close_date.isoformat(),
        "source": s.source,
        "currency": s.currency,
        **_tally_json(s.total),
        "par": {str(days): _ratio(r) for days, r in s.par.items()},
        "npl_principal": money(s.npl_principal),
        "npl_ratio": _ratio(s.npl_ratio),
        "by_bucket": [{"bucket": b, **_tally_json(t)} for b, t in s.by_bucket.items()],
        "by_class": [{"loan_class": c, **_tally_json(t)} for c, t in s.by_class.items()],
    }


def roll_json(r: service.RollFigures) -> dict[str, Any]:
    m = r.matrix
    rows = [
        {
            "bucket": a,
            "loans": sum(m.counts[a].values()),
            "balance": money(sum(m.balances[a].values(), ZERO)),
            "counts": dict(m.counts[a]),
            "balances": {b: money(v) for b, v in m.balances[a].items()},
            "rates": {b: _ratio(v) for b, v in m.rates[a].items()},
            "count_rates": {b: _ratio(v) for b, v in m.count_rates[a].items()},
        }
        for a in m.rows
    ]
    return {
        "previous": r.previous.isoformat(),
        "current": r.current.isoformat(),
        "currency": r.currency,
        "buckets": list(m.rows),
        "columns": list(m.columns),
        "rows": rows,
        "new_count": m.new_count,
        "new_balance": money(m.new_balance),
    }


def vintages_json(v: service.VintageFigures) -> dict[str, Any]:
    t = v.table
    cohorts = [
        {
            "cohort": c,
            "loans": t.loans[c],
            "principal": money(t.principal[c]),
            "months_on_book": [
                {
                    "mob": mob,
                    "amount_share": str(t.amount_share[c][mob]),
                    "count_share": str(t.count_share[c][mob]),
                }
                for mob in sorted(t.amount_share[c])
            ],
        }
        for c in t.cohorts
    ]
    return {
        "as_of": v.as_of.isoformat(),
        "currency": v.currency,
        "threshold_days": t.threshold_days,
        "cumulative": t.cumulative,
        "snapshots": [d.isoformat() for d in v.snapshots],
        "cohorts": cohorts,
    }


def collection_json(c: service.CollectionFigures) -> dict[str, Any]:
    return {
        "start": c.start.isoformat(),
        "end": c.end.isoformat(),
        "as_of": c.as_of.isoformat(),
        "currency": c.currency,
        "installments": c.installments,
        "amount_due": money(c.amount_due),
        "collected": money(c.collected),
        "uncollected": money(c.amount_due - c.collected),
        "collection_rate": _ratio(c.rate),
    }


def _as_of(request: Request, as_of: date | None) -> date:
    if as_of is not None:
        return as_of
    today: date = request.app.state.clock.today()
    return today


@router.get("/summary")
def summary(
    request: Request,
    as_of: AsOf = None,
    product_code: ProductCode = None,
    currency: Currency = None,
    par_days: Annotated[
        list[int] | None, Query(description="PAR thresholds in days, repeatable (1, 30, 60, 90)")
    ] = None,
    _: Principal = require("portfolio:read"),
) -> dict[str, Any]:
    """PAR(n), NPL ratio, loans and amounts by bucket and by five-tier class, provisions."""
    scope = service.Scope(product_code, currency)
    with unit_of_work(request.app.state.sessions) as session:
        found = service.summary(
            session,
            as_of=_as_of(request, as_of),
            scope=scope,
            par_days=service.DEFAULT_PAR_DAYS if par_days is None else par_days,
        )
    return summary_json(found)


@router.get("/roll-rates")
def roll_rates(
    request: Request,
    as_of: AsOf = None,
    previous: Annotated[
        date | None, Query(description="earlier month-end snapshot (default: the one before)")
    ] = None,
    product_code: ProductCode = None,
    currency: Currency = None,
    _: Principal = require("portfolio:read"),
) -> dict[str, Any]:
    """Bucket-to-bucket roll rates between two month-end snapshots, by balance and count."""
    scope = service.Scope(product_code, currency)
    with unit_of_work(request.app.state.sessions) as session:
        found = service.roll_rates(
            session, as_of=_as_of(request, as_of), previous=previous, scope=scope
        )
    return roll_json(found)


@router.get("/vintages")
def vintages(
    request: Request,
    as_of: AsOf = None,
    threshold_days: Annotated[int, Query(ge=0, le=3650)] = 30,
    cumulative: bool = False,
    product_code: ProductCode = None,
    currency: Currency = None,
    _: Principal = require("portfolio:read"),
) -> dict[str, Any]:
    """Each disbursement month's share threshold_days+ past due by month on book."""
    scope = service.Scope(product_code, currency)
    with unit_of_work(request.app.state.sessions) as session:
        found = service.vintages(
            session,
            as_of=_as_of(request, as_of),
            threshold_days=threshold_days,
            cumulative=cumulative,
            scope=scope,
        )
    return vintages_json(found)


@router.get("/collection-rate")
def collection_rate(
    request: Request,
    start: Annotated[date, Query(description="first due date of the period")],
    end: Annotated[date, Query(description="last due date of the period")],
    as_of: AsOf = None,
    product_code: ProductCode = None,
    currency: Currency = None,
    _: Principal = require("portfolio:read"),
) -> dict[str, Any]:
    """Amount due in the period and the amount collected against it by as_of."""
    scope = service.Scope(product_code, currency)
    with unit_of_work(request.app.state.sessions) as session:
        found = service.collection_rate(
            session, start=start, end=end, as_of=_as_of(request, as_of), scope=scope
        )
    return collection_json(found)
