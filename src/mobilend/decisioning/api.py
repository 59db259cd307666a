"""HTTP routes for loan applications: submit, read, review, accept, explain (thin)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from mobilend.api.auth import Principal, require
from mobilend.api.idempotency import run_idempotent
from mobilend.db.session import unit_of_work
from mobilend.decisioning.models import Application, ApplicationReview, DecisionRecord
from mobilend.decisioning.pricing import JURISDICTIONS
from mobilend.decisioning.schemas import ApplicationIn, ReviewIn
from mobilend.decisioning.sources.bureau import BureauAdapter, FileBureau, SimulatedBureau
from mobilend.loans.api import _loan_out
from mobilend.origination.api import request_cipher
from mobilend.settings import Settings

if TYPE_CHECKING:  # the decision engine pulls in pandas, scikit-learn and LightGBM: import it
    # only when a decision is made, so a server that services loans stays small.
    from mobilend.decisioning import service
    from mobilend.decisioning.default_models import ModelSet
    from mobilend.decisioning.engine import EngineConfig

router = APIRouter(prefix="/v1", tags=["applications"])


def _service() -> ModuleType:
    from mobilend.decisioning import service

    return service


def models_for(settings: Settings) -> ModelSet:
    from mobilend.decisioning.default_models import load_models

    """The champion and challenger of the settings' registry (trained there on first use)."""
    return load_models(settings.models_path, challenger_share=settings.challenger_share)


def bureau_for(settings: Settings) -> BureauAdapter:
    if settings.bureau == "simulated":
        return SimulatedBureau(settings.bureau_seed)
    return FileBureau(Path(settings.bureau))


def engine_config(settings: Settings) -> EngineConfig:
    from mobilend.decisioning.engine import EngineConfig, PricingParams

    return EngineConfig(
        pricing=PricingParams(
            cost_of_funds=settings.cost_of_funds,
            lgd=settings.lgd,
            operating_cost=settings.operating_cost,
            margin=settings.margin,
        ),
        jurisdiction=JURISDICTIONS[settings.jurisdiction],
        max_ltv=settings.collateral_max_ltv,
    )


def decision_context(request: Request) -> service.DecisionContext:
    state = request.app.state
    ctx: service.DecisionContext | None = getattr(state, "decisions", None)
    if ctx is None:
        settings: Settings = state.settings
        ctx = _service().DecisionContext(
            cipher=request_cipher(request),
            bureau=bureau_for(settings),
            models=getattr(state, "models", None) or models_for(settings),
            config=engine_config(settings),
            offer_valid_days=settings.offer_valid_days,
        )
        state.decisions = ctx
    return ctx


def _valid_days(request: Request) -> int:
    settings: Settings = request.app.state.settings
    return settings.offer_valid_days


def _review_out(review: ApplicationReview | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "outcome": review.outcome,
        "reason": review.reason,
        "reviewer": {"credential_id": review.reviewer_credential_id, "name": review.reviewer_name},
        "business_date": review.business_date.isoformat(),
        "reviewed_at": review.reviewed_at.astimezone(UTC).isoformat(),
    }


def _out(
    application: Application,
    row: DecisionRecord,
    review: ApplicationReview | None,
    valid_days: int,
) -> dict[str, Any]:
    record = row.record
    offer = record.get("offer")
    if offer and offer.get("status") == "offered" and "valid_until" not in offer:
        until = _service().offer_valid_until(application, record, valid_days)
        offer = {**offer, "valid_until": until.isoformat()}  # a record from before expiry
    return {
        "id": application.id,
        "borrower_id": application.borrower_id,
        "product_code": application.product_code,
        "amount": f"{application.amount:.2f}",
        "periods": application.periods,
        "business_date": application.business_date.isoformat(),
        "status": application.status,
        "decision": row.outcome,
        "reasons": record["reasons"],
        "offer": offer,
        "review": _review_out(review),
        "loan_id": application.loan_id,
    }


def _read(session: Session, application_id: int, valid_days: int) -> dict[str, Any]:
    application, row = _service().get_application(session, application_id)
    return _out(application, row, _service().get_review(session, application_id), valid_days)


@router.post("/applications", status_code=201)
def submit_application(
    body: ApplicationIn, request: Request, who: Principal = require("applications:write")
) -> JSONResponse:
    """Decide an application (409 consent-required before any bureau pull or scoring)."""
    ctx = decision_context(request)
    now: datetime = request.app.state.clock.now()
    today: date = request.app.state.clock.today()

    def effect(session: Session) -> tuple[int, dict[str, Any]]:
        application, row = _service().submit_application(
            session, body, ctx=ctx, now=now, today=today
        )
        return 201, _out(application, row, None, ctx.offer_valid_days)

    return run_idempotent(request, who, body.model_dump(mode="json"), effect)


@router.get("/applications/{application_id}")
def get_application(
    application_id: int, request: Request, _: Principal = require("applications:read")
) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return _read(session, application_id, _valid_days(request))


@router.post("/applications/{application_id}/review", status_code=201)
def review_application(
    application_id: int,
    body: ReviewIn,
    request: Request,
    who: Principal = require("applications:review"),
) -> JSONResponse:
    """A credit officer approves or declines a referred application (409 unless referred, or
    reviewed already; approve after the offer's valid_until: 409 offer-expired)."""
    now: datetime = request.app.state.clock.now()
    today: date = request.app.state.clock.today()
    valid_days = _valid_days(request)

    def effect(session: Session) -> tuple[int, dict[str, Any]]:
        application, row, review = _service().review_application(
            session,
            application_id,
            body,
            reviewer_id=who.credential_id,
            reviewer_name=who.name,
            now=now,
            today=today,
            valid_days=valid_days,
        )
        return 201, _out(application, row, review, valid_days)

    payload = {"application_id": application_id, **body.model_dump(mode="json")}
    return run_idempotent(request, who, payload, effect)


@router.post("/applications/{application_id}/acceptance", status_code=201)
def accept_offer(
    application_id: int, request: Request, who: Principal = require("applications:write")
) -> JSONResponse:
    """Accept an approved offer: the loan is booked on the offered terms (409 the 2nd time,
    or offer-expired after the offer's valid_until)."""
    today: date = request.app.state.clock.today()
    valid_days = _valid_days(request)

    def effect(session: Session) -> tuple[int, dict[str, Any]]:
        _, loan = _service().accept_offer(
            session, application_id, today=today, valid_days=valid_days
        )
        return 201, {**_read(session, application_id, valid_days), "loan": _loan_out(loan)}

    return run_idempotent(request, who, {"application_id": application_id}, effect)


@router.get("/applications/{application_id}/explain")
def explain(
    application_id: int, request: Request, _: Principal = require("decisions:explain")
) -> dict[str, Any]:
    """Operator view: the whole decision record, and whether its hash still matches."""
    with unit_of_work(request.app.state.sessions) as session:
        _, row = _service().get_application(session, application_id)
        return {
            "application": _read(session, application_id, _valid_days(request)),
            "record": row.record,
            "record_hash": row.record_hash,
            "record_hash_ok": _service().record_hash(row.record) == row.record_hash,
        }
