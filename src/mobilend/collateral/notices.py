"""Borrower notices about their collateral, written to the outbox in the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mobilend.collateral.models import Pledge
from mobilend.notify.outbox import enqueue

if TYPE_CHECKING:
    from mobilend.collateral.marking import Mark


def ltv_pct(ltv: Decimal | None) -> str:
    """LTV as a percentage with 2 decimals for borrower messages ("n/a" when worth nothing)."""
    return "n/a" if ltv is None else str((ltv * 100).quantize(Decimal("0.01")))


def notify(
    session: Session,
    pledge: Pledge,
    kind: str,
    *,
    on: date,
    now: datetime,
    mark: Mark | None = None,
    due_on: date | None = None,
) -> None:
    """A borrower notice in the outbox, in this transaction (one per pledge, kind and day)."""
    params: dict[str, Any] = {"loan_id": pledge.loan_id}
    if mark is not None:
        params |= {"value": str(mark.value), "ltv_pct": ltv_pct(mark.ltv)}
        if kind == "margin_call":
            params["prepayment_to_cure"] = str(mark.to_cure)
    if due_on is not None:
        params["due_on"] = due_on.isoformat()
    enqueue(
        session,
        topic=f"collateral.{kind}",
        loan_id=pledge.loan_id,
        params=params,
        business_date=on,
        now=now,
        dedupe_key=f"{kind}:{pledge.id}:{on.isoformat()}",
    )
