"""HTTP routes for the device catalog, price feed, valuations, pledges and mark-to-market."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from mobilend.api.auth import Principal, require
from mobilend.api.idempotency import run_idempotent
from mobilend.collateral import catalog, marking, pledges, prices, service
from mobilend.collateral.models import CollateralEvent, MarginCall, Pledge
from mobilend.collateral.schemas import (
    CatalogImportIn,
    CollateralTermsIn,
    IdentifyIn,
    LiquidationIn,
    MarkIn,
    PledgeIn,
    QuotesImportIn,
    ReasonIn,
    ValuationIn,
)
from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.db.session import unit_of_work
from mobilend.loans.models import Product
from mobilend.loans.statement import money, summary

router = APIRouter(prefix="/v1")
LTV_STEP = Decimal("0.0001")


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


def model_json(m: catalog.DeviceModel) -> dict[str, Any]:
    return {
        "key": m.key,
        "brand": m.brand,
        "model": m.model,
        "release_date": m.release_date.isoformat(),
        "currency": m.currency,
        "tier": m.tier,
        "successor_key": m.successor_key,
        "variants": [
            {"storage_gb": v.storage_gb, "launch_price": money(v.launch_price)} for v in m.variants
        ],
        "tacs": list(m.tacs),
    }


def pledge_json(p: Pledge) -> dict[str, Any]:
    def opt(value: Any) -> str | None:
        return None if value is None else money(value)

    return {
        "id": p.id,
        "loan_id": p.loan_id,
        "imei": p.imei[:8] + "*****" + p.imei[-2:],
        "model_key": p.model_key,
        "storage_gb": p.storage_gb,
        "grade": p.grade,
        "condition": p.condition,
        "custody_mode": p.custody_mode,
        "location": p.location,
        "status": p.status,
        "pledged_on": p.pledged_on.isoformat(),
        "closed_on": p.closed_on.isoformat() if p.closed_on else None,
        "booking_value": money(p.booking_value),
        "lending_value": money(p.lending_value),
        "current_value": money(p.current_value),
        "outstanding": money(p.outstanding),
        "ltv": None if p.ltv is None else str(p.ltv.quantize(LTV_STEP)),
        "ltv_status": p.ltv_status,
        "shortfall": money(p.shortfall),
        "marked_on": p.marked_on.isoformat() if p.marked_on else None,
        "sale_proceeds": opt(p.sale_proceeds),
        "surplus": opt(p.surplus),
    }


def call_json(c: MarginCall) -> dict[str, Any]:
    return {
        "id": c.id,
        "pledge_id": c.pledge_id,
        "opened_on": c.opened_on.isoformat(),
        "due_on": c.due_on.isoformat(),
        "ltv": str(c.ltv.quantize(LTV_STEP)),
        "shortfall": money(c.shortfall),
        "prepayment_to_cure": money(c.prepayment_to_cure),
        "status": c.status,
        "closed_on": c.closed_on.isoformat() if c.closed_on else None,
    }


# ---------------------------------------------------------------- catalog and prices


@router.get("/catalog/models", tags=["collateral"])
def list_models(request: Request, _: Principal = require("collateral:read")) -> list[Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return [model_json(m) for m in service.list_models(session)]


@router.get("/catalog/models/{key}", tags=["collateral"])
def get_model(key: str, request: Request, _: Principal = require("collateral:read")) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        return model_json(service.get_model(session, key))


@router.post("/catalog/imports", status_code=201, tags=["collateral"])
def import_catalog(
    body: CatalogImportIn, request: Request, _: Principal = require("collateral:write")
) -> Any:
    if body.seed == (body.csv is not None):
        raise ValidationFailed("csv", "one-source", "give either seed: true or the csv text")
    models = catalog.seed_catalog() if body.seed else catalog.parse_catalog_csv(body.csv or "")
    with unit_of_work(request.app.state.sessions) as session:
        return service.import_catalog(session, models)


@router.post("/catalog/identify", tags=["collateral"])
def identify(body: IdentifyIn, request: Request, _: Principal = require("collateral:read")) -> Any:
    """The model an IMEI's TAC identifies (IMEIs travel in bodies, never in URLs)."""
    with unit_of_work(request.app.state.sessions) as session:
        model = service.model_by_imei(session, body.imei)
    if model is None:
        raise NotFound("the IMEI's TAC is not in the catalog", field="imei")
    return model_json(model)


@router.post("/price-quotes/imports", status_code=201, tags=["collateral"])
def import_quotes(
    body: QuotesImportIn, request: Request, _: Principal = require("collateral:write")
) -> Any:
    parse = prices.parse_quotes_csv if body.format == "csv" else prices.parse_quotes_json
    quotes = parse(body.data)
    with unit_of_work(request.app.state.sessions) as session:
        return service.import_quotes(session, quotes, now=request.app.state.clock.now())


@router.get("/market-prices", tags=["collateral"])
def market_price(
    request: Request,
    model_key: str,
    storage_gb: int,
    grade: str,
    as_of: date | None = None,
    _: Principal = require("collateral:read"),
) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        service.get_model(session, model_key)
        mp = service.market_price(
            session,
            model_key=model_key,
            storage_gb=storage_gb,
            grade=grade,
            as_of=as_of or _today(request),
        )
    return {
        "price": None if mp.price is None else money(mp.price),
        "used": mp.used,
        "rejected": mp.rejected,
        "latest": mp.latest.isoformat() if mp.latest else None,
        "stale": mp.stale,
    }


# ---------------------------------------------------------------- valuations and terms


@router.post("/valuations", tags=["collateral"])
def value(body: ValuationIn, request: Request, _: Principal = require("collateral:read")) -> Any:
    """Value a phone (no side effects): today's value, the forecast and the lending value."""
    today = _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        key = body.model_key
        if body.imei is not None:
            by_tac = service.model_by_imei(session, body.imei)
            if key is None and by_tac is None:
                raise ValidationFailed("model_key", "required", "the IMEI's TAC is unknown")
            if key is not None and by_tac is not None and by_tac.key != key:
                raise ValidationFailed("imei", "tac-mismatch", f"the TAC is {by_tac.key}'s")
            key = key or (by_tac.key if by_tac else None)
        if key is None:
            raise ValidationFailed("model_key", "required", "name the model or give an IMEI")
        haircut = service.DEFAULT_TERMS["haircut"]
        if body.product_code:
            product = session.scalar(select(Product).where(Product.code == body.product_code))
            if product is None:
                raise NotFound(f"no product {body.product_code!r}", field="product_code")
            haircut = service.terms_for(session, product.id).haircut
        found = service.value_device(
            session,
            model_key=key,
            storage_gb=body.storage_gb,
            condition=body.condition.to_condition(),
            as_of=today,
            horizon=body.horizon or today,
            haircut=haircut,
        )
    return found.as_json()


@router.get("/products/{code}/collateral-terms", tags=["collateral"])
def get_terms(code: str, request: Request, _: Principal = require("products:read")) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        product = session.scalar(select(Product).where(Product.code == code))
        if product is None:
            raise NotFound(f"no product {code!r}", field="code")
        return service.terms_for(session, product.id).as_json()


@router.put("/products/{code}/collateral-terms", tags=["collateral"])
def put_terms(
    code: str, body: CollateralTermsIn, request: Request, _: Principal = require("products:write")
) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        return service.set_terms(session, product_code=code, data=body.model_dump()).as_json()


# ---------------------------------------------------------------- pledges


@router.post("/loans/{loan_id}/pledges", status_code=201, tags=["collateral"])
def create_pledge(
    loan_id: int, body: PledgeIn, request: Request, who: Principal = require("collateral:write")
) -> JSONResponse:
    """Value the phone and pledge it; device-lock mode answers a one-time provisioning token."""
    with unit_of_work(request.app.state.sessions) as session:
        done = pledges.register(
            session,
            loan_id=loan_id,
            imei=body.imei,
            model_key=body.model_key,
            storage_gb=body.storage_gb,
            condition=body.condition.to_condition(),
            custody_mode=body.custody_mode,
            location=body.location,
            business_date=_today(request),
            now=request.app.state.clock.now(),
            actor=who.name,
        )
        out = pledge_json(done.pledge) | {"valuation": done.valuation.as_json()}
        if done.provisioning_token is not None:
            out["provisioning_token"] = done.provisioning_token
    return JSONResponse(out, status_code=201)


@router.get("/loans/{loan_id}/pledges", tags=["collateral"])
def loan_pledges(loan_id: int, request: Request, _: Principal = require("collateral:read")) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        rows = session.scalars(select(Pledge).where(Pledge.loan_id == loan_id).order_by(Pledge.id))
        return [pledge_json(p) for p in rows]


@router.get("/pledges", tags=["collateral"])
def list_pledges(
    request: Request,
    status: str | None = None,
    ltv_status: str | None = None,
    after_id: int = 0,
    limit: int = Query(default=100, ge=1, le=1000),
    _: Principal = require("collateral:read"),
) -> Any:
    stmt = select(Pledge).where(Pledge.id > after_id).order_by(Pledge.id).limit(limit)
    if status:
        stmt = stmt.where(Pledge.status == status)
    if ltv_status:
        stmt = stmt.where(Pledge.ltv_status == ltv_status)
    with unit_of_work(request.app.state.sessions) as session:
        return [pledge_json(p) for p in session.scalars(stmt)]


@router.get("/pledges/{pledge_id}", tags=["collateral"])
def get_pledge(pledge_id: int, request: Request, _: Principal = require("collateral:read")) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        pledge = pledges.get_pledge(session, pledge_id)
        calls = session.scalars(
            select(MarginCall).where(MarginCall.pledge_id == pledge_id).order_by(MarginCall.id)
        )
        return pledge_json(pledge) | {"margin_calls": [call_json(c) for c in calls]}


@router.get("/pledges/{pledge_id}/events", tags=["collateral"])
def pledge_events(
    pledge_id: int, request: Request, _: Principal = require("collateral:read")
) -> Any:
    """The pledge's audit trail: registration, marks, margin calls, lock, release, sale."""
    with unit_of_work(request.app.state.sessions) as session:
        pledges.get_pledge(session, pledge_id)
        rows = session.scalars(
            select(CollateralEvent)
            .where(CollateralEvent.pledge_id == pledge_id)
            .order_by(CollateralEvent.id)
        )
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "business_date": e.business_date.isoformat(),
                "actor": e.actor,
                "detail": e.detail,
                "created_at": e.created_at.isoformat(),
            }
            for e in rows
        ]


@router.post("/pledges/{pledge_id}/release", tags=["collateral"])
def release(
    pledge_id: int, body: ReasonIn, request: Request, who: Principal = require("collateral:write")
) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        pledge = pledges.get_pledge(session, pledge_id, lock=True)
        pledges.release(session, pledge, on=_today(request), now=request.app.state.clock.now(),
                        actor=who.name, why=body.reason)  # fmt: skip
        return pledge_json(pledge)


@router.post("/pledges/{pledge_id}/forfeit", tags=["collateral"])
def forfeit(
    pledge_id: int, body: ReasonIn, request: Request, who: Principal = require("collateral:write")
) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        pledge = pledges.forfeit(session, pledge_id=pledge_id, business_date=_today(request),
                                 now=request.app.state.clock.now(), actor=who.name,
                                 reason=body.reason)  # fmt: skip
        return pledge_json(pledge)


@router.post("/pledges/{pledge_id}/liquidation", status_code=201, tags=["collateral"])
def liquidate(
    pledge_id: int,
    body: LiquidationIn,
    request: Request,
    who: Principal = require("payments:write"),
) -> JSONResponse:
    """Post the sale proceeds of a forfeited phone through the loan's ledger (Idempotency-Key)."""
    today = _today(request)

    def effect(session: Any) -> tuple[int, dict[str, Any]]:
        done = pledges.liquidate(
            session,
            pledge_id=pledge_id,
            proceeds=body.proceeds,
            sold_on=body.sold_on or today,
            business_date=today,
            now=request.app.state.clock.now(),
            actor=who.name,
            buyer=body.buyer,
        )
        return 201, {
            "pledge": pledge_json(done.pledge),
            "repayment_id": done.repayment_id,
            "applied": money(done.applied),
            "surplus": money(done.surplus),
            "remaining": money(done.remaining),
            "loan": summary(session, done.pledge.loan_id),
        }

    return run_idempotent(request, who, body.model_dump(mode="json"), effect)


# ---------------------------------------------------------------- mark-to-market


@router.post("/collateral/mark-to-market", tags=["collateral"])
def mark(body: MarkIn, request: Request, _: Principal = require("collateral:write")) -> Any:
    """Mark every active pledge for the business date (idempotent per date)."""
    on = body.business_date or _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        counts = marking.mark_all(session, on=on, now=request.app.state.clock.now())
    return {"business_date": on.isoformat(), **counts}


@router.get("/margin-calls", tags=["collateral"])
def margin_calls(
    request: Request,
    status: str | None = "open",
    _: Principal = require("collateral:read"),
) -> Any:
    stmt = select(MarginCall).order_by(MarginCall.id)
    if status:
        stmt = stmt.where(MarginCall.status == status)
    with unit_of_work(request.app.state.sessions) as session:
        return [call_json(c) for c in session.scalars(stmt)]


@router.get("/collateral/summary", tags=["collateral"])
def collateral_summary(request: Request, _: Principal = require("collateral:read")) -> Any:
    """Active pledges by loan-to-value status, with value, outstanding and shortfall totals."""
    with unit_of_work(request.app.state.sessions) as session:
        rows = session.execute(
            select(
                Pledge.ltv_status,
                func.count(),
                func.sum(Pledge.current_value),
                func.sum(Pledge.outstanding),
                func.sum(Pledge.shortfall),
            )
            .where(Pledge.status == "active")
            .group_by(Pledge.ltv_status)
        ).all()
    return {
        status: {
            "pledges": n,
            "value": money(value),
            "outstanding": money(owed),
            "shortfall": money(short),
        }
        for status, n, value, owed, short in rows
    }
