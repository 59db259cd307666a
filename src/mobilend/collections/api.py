"""HTTP routes of collections: queues, agents, cases, contacts, actions, promises,
restructuring offers and legal referral (docs/collections.md). Routes never commit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from mobilend.api.auth import Principal, require
from mobilend.api.idempotency import run_idempotent
from mobilend.collections import actions, arrangements, service
from mobilend.collections.conduct import ConductViolation
from mobilend.collections.models import (
    CollectionAction,
    CollectionAgent,
    CollectionCase,
    CollectionContact,
    CollectionRefusal,
    LegalEscalation,
    PromiseRecord,
    Restructuring,
)
from mobilend.collections.schemas import (
    ActionIn,
    AgentIn,
    AssignAllIn,
    AssignIn,
    CaseIn,
    ContactIn,
    DoNotContactIn,
    EscalateIn,
    PromiseIn,
    RestructureOfferIn,
)
from mobilend.db.session import unit_of_work
from mobilend.loans.statement import money
from mobilend.origination.api import request_cipher

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _uow(request: Request) -> Any:
    return unit_of_work(request.app.state.sessions)


# ---------------------------------------------------------------- JSON shapes


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _opt_money(value: Decimal | None) -> str | None:
    return None if value is None else money(value)


def case_json(session: Session, case: CollectionCase) -> dict[str, Any]:
    row = service.delinquency_of(session, case.loan_id)
    return {
        "id": case.id,
        "loan_id": case.loan_id,
        "queue": case.queue,
        "status": case.status,
        "agent_id": case.agent_id,
        "assigned_on": _day(case.assigned_on),
        "opened_on": case.opened_on.isoformat(),
        "closed_on": _day(case.closed_on),
        "close_reason": case.close_reason,
        "dpd_at_open": case.dpd_at_open,
        "broken_promises": case.broken_promises,
        "do_not_contact": case.do_not_contact,
        "delinquency": None
        if row is None
        else {
            "business_date": row.business_date.isoformat(),
            "dpd": row.dpd,
            "bucket": row.bucket,
            "loan_class": row.loan_class,
            "class_floor": row.class_floor,
            "overdue": money(
                row.overdue_principal + row.overdue_interest + row.overdue_fee + row.overdue_penalty
            ),
            "exposure": money(row.exposure),
            "provision": money(row.provision),
        },
    }


def agent_json(agent: CollectionAgent, load: int | None = None) -> dict[str, Any]:
    out = {
        "id": agent.id,
        "name": agent.name,
        "role": agent.role,
        "queues": list(agent.queues),
        "capacity": agent.capacity,
        "active": agent.active,
    }
    if load is not None:
        out["load"] = load
    return out


def contact_json(c: CollectionContact) -> dict[str, Any]:
    return {
        "id": c.id,
        "loan_id": c.loan_id,
        "relation": c.relation,
        "relationship": c.relationship,
        "kind": c.kind,
        "masked": c.masked,
        "timezone": c.timezone,
        "consented_at": c.consented_at.isoformat() if c.consented_at else None,
    }


def action_json(a: CollectionAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "case_id": a.case_id,
        "agent_id": a.agent_id,
        "contact_id": a.contact_id,
        "relation": a.relation,
        "purpose": a.purpose,
        "channel": a.channel,
        "at": a.at.isoformat(),
        "outcome": a.outcome,
        "note": a.note,
    }


def refusal_json(r: CollectionRefusal) -> dict[str, Any]:
    return {
        "id": r.id,
        "agent_id": r.agent_id,
        "contact_id": r.contact_id,
        "channel": r.channel,
        "at": r.at.isoformat(),
        "rule": r.rule,
        "field": r.field,
        "detail": r.detail,
    }


def promise_json(p: PromiseRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "case_id": p.case_id,
        "amount": money(p.amount),
        "made_on": p.made_on.isoformat(),
        "due_date": p.due_date.isoformat(),
        "status": p.status,
        "paid": money(p.paid),
        "resolved_on": _day(p.resolved_on),
    }


def restructuring_json(r: Restructuring) -> dict[str, Any]:
    return {
        "id": r.id,
        "loan_id": r.loan_id,
        "case_id": r.case_id,
        "status": r.status,
        "extension_months": r.extension_months,
        "new_installment": _opt_money(r.new_installment),
        "offered_on": r.offered_on.isoformat(),
        "valid_until": r.valid_until.isoformat(),
        "accepted_on": _day(r.accepted_on),
        "dpd": r.dpd,
        "outstanding_principal": money(r.outstanding_principal),
        "arrears": money(r.arrears),
        "periods": r.periods,
        "schedule": r.schedule,
    }


def legal_json(e: LegalEscalation) -> dict[str, Any]:
    return {
        "id": e.id,
        "case_id": e.case_id,
        "escalated_on": e.escalated_on.isoformat(),
        "dpd": e.dpd,
        "exposure": money(e.exposure),
        "reason": e.reason,
    }


def case_detail(session: Session, case: CollectionCase) -> dict[str, Any]:
    return {
        **case_json(session, case),
        "contacts": [contact_json(c) for c in actions.contacts_of(session, case.loan_id)],
        "actions": [action_json(a) for a in actions.actions_of(session, case.id)],
        "refused_attempts": [refusal_json(r) for r in actions.refusals_of(session, case.id)],
        "promises": [promise_json(p) for p in arrangements.promises_of(session, case.id)],
        "restructurings": [
            restructuring_json(r) for r in arrangements.restructurings_of(session, case.loan_id)
        ],
        "legal": [legal_json(e) for e in arrangements.legal_of(session, case.id)],
    }


def queue_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "overdue": money(entry["overdue"]), "exposure": money(entry["exposure"])}


# ---------------------------------------------------------------- queues and agents


@router.get("/queues")
def queues(request: Request, _: Principal = require("collections:read")) -> list[dict[str, Any]]:
    """Open cases per queue, how many wait for an agent, their overdue amount and exposure."""
    with _uow(request) as session:
        return [queue_json(q) for q in service.queue_summary(session)]


@router.get("/agents")
def list_agents(
    request: Request, _: Principal = require("collections:read")
) -> list[dict[str, Any]]:
    with _uow(request) as session:
        loads = {a.id: a.load for a in service.agent_loads(session)}
        return [agent_json(service.get_agent(session, i), load) for i, load in loads.items()]


@router.post("/agents", status_code=201)
def create_agent(
    body: AgentIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    with _uow(request) as session:
        agent = service.register_agent(
            session,
            name=body.name,
            role=body.role,
            queues_worked=body.queues,
            capacity=body.capacity,
        )
        return agent_json(agent, 0)


@router.post("/assignments")
def assign_all(
    body: AssignAllIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, int]:
    """Give every unassigned open case (of one queue, or all) to an agent with room."""
    with _uow(request) as session:
        n = service.assign_cases(session, business_date=_today(request), queue=body.queue)
        return {"assigned": n}


# ---------------------------------------------------------------- cases


@router.get("/cases")
def list_cases(
    request: Request,
    queue: str | None = None,
    status: str | None = None,
    agent_id: int | None = None,
    after_id: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = require("collections:read"),
) -> list[dict[str, Any]]:
    with _uow(request) as session:
        found = service.list_cases(
            session, queue=queue, status=status, agent_id=agent_id, after_id=after_id, limit=limit
        )
        return [case_json(session, c) for c in found]


@router.post("/cases", status_code=201)
def open_case(
    body: CaseIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    """Open the case of a loan delinquent at the last close (the close does this daily)."""
    with _uow(request) as session:
        case = service.open_case(session, loan_id=body.loan_id, business_date=_today(request))
        return case_json(session, case)


@router.get("/cases/{case_id}")
def get_case(
    case_id: int, request: Request, _: Principal = require("collections:read")
) -> dict[str, Any]:
    with _uow(request) as session:
        return case_detail(session, service.get_case(session, case_id))


@router.post("/cases/{case_id}/assign")
def assign(
    case_id: int, body: AssignIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    """Assign or reassign the case: to `agent_id`, or to the least-loaded agent with room."""
    with _uow(request) as session:
        case = service.assign_case(
            session, case_id=case_id, business_date=_today(request), agent_id=body.agent_id
        )
        return case_json(session, case)


@router.post("/cases/{case_id}/do-not-contact")
def do_not_contact(
    case_id: int,
    body: DoNotContactIn,
    request: Request,
    _: Principal = require("collections:write"),
) -> dict[str, Any]:
    with _uow(request) as session:
        case = service.set_do_not_contact(session, case_id=case_id, flag=body.do_not_contact)
        return case_json(session, case)


# ---------------------------------------------------------------- contacts and actions


@router.get("/loans/{loan_id}/contacts")
def list_contacts(
    loan_id: int, request: Request, _: Principal = require("collections:read")
) -> list[dict[str, Any]]:
    with _uow(request) as session:
        return [contact_json(c) for c in actions.contacts_of(session, loan_id)]


@router.post("/loans/{loan_id}/contacts", status_code=201)
def add_contact(
    loan_id: int, body: ContactIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    """Register a contact point of the borrower or of a party the borrower named."""
    cipher = request_cipher(request)
    with _uow(request) as session:
        contact = actions.add_contact(
            session,
            loan_id=loan_id,
            relation=body.relation,
            relationship=body.relationship,
            kind=body.kind,
            value=body.value,
            timezone=body.timezone,
            consented_at=body.consented_at,
            cipher=cipher,
            business_date=_today(request),
        )
        return contact_json(contact)


@router.post("/cases/{case_id}/actions", status_code=201)
def record_action(
    case_id: int, body: ActionIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    """Record a contact made. A conduct refusal is 422 naming the rule; it stores no action,
    but the refused attempt is logged (in its own transaction) for supervision."""
    now = _now(request)
    at = body.at or now
    point = None
    if body.value is not None:
        point = actions.contact_point_of(request_cipher(request), body.kind, body.value)
    try:
        with _uow(request) as session:
            action = actions.record_action(
                session,
                case_id=case_id,
                agent_id=body.agent_id,
                channel=body.channel,
                at=at,
                now=now,
                outcome=body.outcome,
                contact_id=body.contact_id,
                contact_point=point,
                purpose=body.purpose,
                note=body.note,
            )
            return action_json(action)
    except ConductViolation as refused:
        with _uow(request) as session:
            actions.log_refusal(
                session,
                case_id=case_id,
                violation=refused,
                channel=body.channel,
                at=at,
                agent_id=body.agent_id,
                contact_id=body.contact_id,
                contact_point=point,
            )
        raise


# ---------------------------------------------------------------- promises, restructuring, legal


@router.post("/cases/{case_id}/promises", status_code=201)
def make_promise(
    case_id: int, body: PromiseIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    with _uow(request) as session:
        promise = arrangements.make_promise(
            session,
            case_id=case_id,
            amount=body.amount,
            due_date=body.due_date,
            business_date=_today(request),
            agent_id=body.agent_id,
        )
        return promise_json(promise)


@router.post("/cases/{case_id}/restructure-offers", status_code=201)
def offer_restructuring(
    case_id: int,
    body: RestructureOfferIn,
    request: Request,
    _: Principal = require("collections:write"),
) -> dict[str, Any]:
    """Check and price a term extension and/or reduced installment (nothing changes yet)."""
    with _uow(request) as session:
        offer = arrangements.offer_restructuring(
            session,
            case_id=case_id,
            business_date=_today(request),
            extension_months=body.extension_months,
            new_installment=body.new_installment,
        )
        return restructuring_json(offer)


@router.post("/restructure-offers/{offer_id}/accept")
def accept_restructuring(
    offer_id: int, request: Request, who: Principal = require("loans:write")
) -> JSONResponse:
    """Apply an offer to the loan's schedule (Idempotency-Key required: it changes the loan)."""
    today = _today(request)

    def effect(session: Session) -> tuple[int, dict[str, Any]]:
        done = arrangements.accept_restructuring(
            session, restructuring_id=offer_id, business_date=today
        )
        return 200, restructuring_json(done)

    return run_idempotent(request, who, {"offer_id": offer_id}, effect)


@router.post("/cases/{case_id}/escalate", status_code=201)
def escalate(
    case_id: int, body: EscalateIn, request: Request, _: Principal = require("collections:write")
) -> dict[str, Any]:
    """Refer the case to legal review (from the product's legal_after_dpd)."""
    with _uow(request) as session:
        record = arrangements.escalate_to_legal(
            session,
            case_id=case_id,
            business_date=_today(request),
            reason=body.reason,
            agent_id=body.agent_id,
        )
        return legal_json(record)
