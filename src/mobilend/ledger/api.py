"""Read-only ledger routes: journal entries and the trial balance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from mobilend.api.auth import Principal, require
from mobilend.db.session import unit_of_work
from mobilend.ledger.models import JournalEntry
from mobilend.ledger.service import trial_balance

router = APIRouter(prefix="/v1", tags=["ledger"])


def entry_out(e: JournalEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "loan_id": e.loan_id,
        "kind": e.kind,
        "business_date": e.business_date.isoformat(),
        "description": e.description,
        "reverses_id": e.reverses_id,
        "lines": [
            {"account": ln.account, "currency": ln.currency, "amount": str(ln.amount)}
            for ln in e.lines
        ],
    }


@router.get("/ledger/entries")
def list_entries(
    request: Request,
    loan_id: int | None = None,
    kind: str | None = None,
    after_id: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = require("ledger:read"),
) -> list[dict[str, Any]]:
    with unit_of_work(request.app.state.sessions) as session:
        q = (
            select(JournalEntry)
            .where(JournalEntry.id > after_id)
            .order_by(JournalEntry.id)
            .limit(limit)
        )
        if loan_id is not None:
            q = q.where(JournalEntry.loan_id == loan_id)
        if kind:
            q = q.where(JournalEntry.kind == kind)
        return [entry_out(e) for e in session.scalars(q)]


@router.get("/loans/{loan_id}/entries")
def loan_entries(
    loan_id: int, request: Request, _: Principal = require("ledger:read")
) -> list[dict[str, Any]]:
    with unit_of_work(request.app.state.sessions) as session:
        q = select(JournalEntry).where(JournalEntry.loan_id == loan_id).order_by(JournalEntry.id)
        return [entry_out(e) for e in session.scalars(q)]


@router.get("/ledger/trial-balance")
def get_trial_balance(request: Request, _: Principal = require("ledger:read")) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        rows = trial_balance(session)
    return {
        "accounts": [
            {"account": a, "currency": c, "balance": str(v)} for (a, c), v in sorted(rows.items())
        ],
        "balanced": all(
            sum(v for (_, c2), v in rows.items() if c2 == c) == 0 for c in {c for _, c in rows}
        ),
    }
