"""HTTP routes for products, quotes, loans and payments (thin: parse, call a service, shape)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from mobilend.api.auth import Principal, require
from mobilend.api.idempotency import run_idempotent
from mobilend.db.session import unit_of_work
from mobilend.loans import service
from mobilend.loans.models import Loan, Product
from mobilend.loans.quoting import quote, quote_json, terms_for
from mobilend.loans.schemas import (
    AmountIn,
    DateIn,
    DisburseIn,
    LoanIn,
    PrepayIn,
    ProductIn,
    ProductOut,
    QuoteIn,
    RefundIn,
    ReverseIn,
)
from mobilend.loans.statement import money, statement, summary

router = APIRouter(prefix="/v1")


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


def _product_out(p: Product) -> dict[str, Any]:
    return ProductOut.model_validate(p, from_attributes=True).model_dump(mode="json")


def _loan_out(loan: Loan) -> dict[str, Any]:
    return {
        "id": loan.id,
        "product_id": loan.product_id,
        "borrower_ref": loan.borrower_ref,
        "status": loan.status,
        "currency": loan.currency,
        "principal": money(loan.principal),
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "accrued_through": loan.accrued_through.isoformat() if loan.accrued_through else None,
        "closed_on": loan.closed_on.isoformat() if loan.closed_on else None,
        "written_off_on": loan.written_off_on.isoformat() if loan.written_off_on else None,
    }


# ------------------------------------------------------------------ products and quotes


@router.post("/products", status_code=201, tags=["products"])
def create_product(
    body: ProductIn, request: Request, _: Principal = require("products:write")
) -> JSONResponse:
    with unit_of_work(request.app.state.sessions) as session:
        out = _product_out(service.create_product(session, body))
    return JSONResponse(out, status_code=201)


@router.get("/products", tags=["products"])
def list_products(
    request: Request, _: Principal = require("products:read")
) -> list[dict[str, Any]]:
    with unit_of_work(request.app.state.sessions) as session:
        return [_product_out(p) for p in session.scalars(select(Product).order_by(Product.id))]


@router.get("/products/{code}", tags=["products"])
def get_product(
    code: str, request: Request, _: Principal = require("products:read")
) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return _product_out(service.get_product(session, code))


@router.post("/quotes", tags=["quotes"])
def create_quote(
    body: QuoteIn, request: Request, _: Principal = require("quotes:create")
) -> dict[str, Any]:
    """Schedule and annualized rate for a request. No side effects: nothing is stored."""
    with unit_of_work(request.app.state.sessions) as session:
        product = service.get_product(session, body.product_code)
        config = service.product_config(product)
        currency = product.currency
    terms = terms_for(
        config,
        currency=currency,
        principal=body.principal,
        periods=body.periods,
        start=body.start_date,
        annual_rate_pct=body.annual_rate_pct,
        first_due_date=body.first_due_date,
    )
    return quote_json(quote(terms, apr_cap_pct=config.apr_cap_pct))


# ------------------------------------------------------------------ loans


@router.post("/loans", status_code=201, tags=["loans"])
def create_loan(
    body: LoanIn, request: Request, who: Principal = require("loans:write")
) -> JSONResponse:
    def effect(session: Any) -> tuple[int, dict[str, Any]]:
        loan = service.create_loan(session, body)
        return 201, {**_loan_out(loan), "statement": statement(session, loan.id)}

    return run_idempotent(request, who, body.model_dump(mode="json"), effect)


@router.get("/loans", tags=["loans"])
def list_loans(
    request: Request,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    after_id: int = Query(0, ge=0),
    _: Principal = require("loans:read"),
) -> list[dict[str, Any]]:
    with unit_of_work(request.app.state.sessions) as session:
        q = select(Loan).where(Loan.id > after_id).order_by(Loan.id).limit(limit)
        if status:
            q = q.where(Loan.status == status)
        return [_loan_out(loan) for loan in session.scalars(q)]


@router.get("/loans/{loan_id}", tags=["loans"])
def get_loan(
    loan_id: int, request: Request, _: Principal = require("loans:read")
) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return _loan_out(service.get_loan(session, loan_id))


@router.get("/loans/{loan_id}/statement", tags=["loans"])
def get_statement(
    loan_id: int, request: Request, _: Principal = require("loans:read")
) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return statement(session, loan_id)


@router.get("/loans/{loan_id}/payoff", tags=["loans"])
def get_payoff(
    loan_id: int,
    request: Request,
    value_date: date | None = None,
    _: Principal = require("loans:read"),
) -> dict[str, Any]:
    today = _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        p = service.payoff_quote(
            session, loan_id=loan_id, value_date=value_date or today, business_date=today
        )
    return {
        "value_date": p.value_date.isoformat(),
        "due": money(p.due),
        "accrued_interest": money(p.accrued_interest),
        "future_principal": money(p.future_principal),
        "total": money(p.total),
    }


def _loan_effect(loan_id: int, fn: Any) -> Any:
    def effect(session: Any) -> tuple[int, dict[str, Any]]:
        result = fn(session)
        out = {"result": result} if result is not None else {}
        return 201, {**out, "loan": summary(session, loan_id)}

    return effect


@router.post("/loans/{loan_id}/disbursements", status_code=201, tags=["payments"])
def disburse(
    loan_id: int, body: DisburseIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    value_date = body.value_date or _today(request)

    def fn(session: Any) -> None:
        service.disburse(
            session, loan_id=loan_id, value_date=value_date, business_date=_today(request)
        )

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


def _repayment_out(r: Any) -> dict[str, Any]:
    return {
        "repayment_id": r.id,
        "kind": r.kind,
        "amount": money(r.amount),
        "value_date": r.value_date.isoformat(),
        "unallocated": money(r.unallocated),
        "entry_id": r.entry_id,
    }


@router.post("/loans/{loan_id}/repayments", status_code=201, tags=["payments"])
def repay(
    loan_id: int, body: AmountIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    """Apply a repayment (or, on a written-off loan, a recovery)."""
    today = _today(request)

    def fn(session: Any) -> dict[str, Any]:
        r = service.repay(
            session,
            loan_id=loan_id,
            amount=body.amount,
            value_date=body.value_date or today,
            business_date=today,
            reference=body.reference,
            now=request.app.state.clock.now(),
        )
        return _repayment_out(r)

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


@router.post("/loans/{loan_id}/prepayments", status_code=201, tags=["payments"])
def prepay(
    loan_id: int, body: PrepayIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    today = _today(request)

    def fn(session: Any) -> dict[str, Any]:
        r = service.prepay(
            session,
            loan_id=loan_id,
            amount=body.amount,
            mode=body.mode,
            value_date=body.value_date or today,
            business_date=today,
            reference=body.reference,
            now=request.app.state.clock.now(),
        )
        return _repayment_out(r)

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


@router.post("/loans/{loan_id}/refunds", status_code=201, tags=["payments"])
def refund(
    loan_id: int, body: RefundIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    """Pay back the borrower's credit balance (all of it when amount is omitted)."""
    today = _today(request)

    def fn(session: Any) -> dict[str, Any]:
        r = service.refund_credit(
            session,
            loan_id=loan_id,
            amount=body.amount,
            value_date=body.value_date or today,
            business_date=today,
            reference=body.reference,
        )
        return _repayment_out(r)

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


@router.post("/loans/{loan_id}/accruals", status_code=201, tags=["payments"])
def accrue(
    loan_id: int, body: DateIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    """Recognise interest, fees and penalty through a date (the daily close does this nightly)."""
    through = body.value_date or _today(request)

    def fn(session: Any) -> None:
        service.accrue(session, loan_id=loan_id, through=through)

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


@router.post("/loans/{loan_id}/write-offs", status_code=201, tags=["payments"])
def write_off(
    loan_id: int, body: DateIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    today = _today(request)

    def fn(session: Any) -> None:
        service.write_off(
            session, loan_id=loan_id, value_date=body.value_date or today, business_date=today
        )

    return run_idempotent(request, who, body.model_dump(mode="json"), _loan_effect(loan_id, fn))


@router.post("/repayments/{repayment_id}/reversals", status_code=201, tags=["payments"])
def reverse(
    repayment_id: int, body: ReverseIn, request: Request, who: Principal = require("payments:write")
) -> JSONResponse:
    today = _today(request)

    def effect(session: Any) -> tuple[int, dict[str, Any]]:
        r = service.reverse_repayment(
            session,
            repayment_id=repayment_id,
            business_date=body.value_date or today,
            reason=body.reason,
        )
        return 201, {
            "result": _repayment_out(r) | {"status": r.status},
            "loan": summary(session, r.loan_id),
        }

    return run_idempotent(request, who, body.model_dump(mode="json"), effect)
