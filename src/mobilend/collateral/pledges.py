"""Pledge lifecycle: register on booking, release on payoff, forfeit and liquidate on default.

Liquidation proceeds go through the loan engine, so through the ledger: proceeds up to what
is due are a repayment; beyond that a prepayment; beyond the payoff the surplus is held as
the borrower's credit balance (refundable with POST /v1/loans/{id}/refunds). What the proceeds
do not cover stays owed on the loan's schedule. After a write-off the proceeds are a recovery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilend.collateral import catalog, grading, notices, valuation
from mobilend.collateral.models import CollateralEvent, MarginCall, Pledge
from mobilend.collateral.service import DeviceValuation, get_model, terms_for, value_device
from mobilend.core.canonical import canonical_json
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.core.money import ZERO
from mobilend.loans import service as loans
from mobilend.loans.models import Installment, Loan
from mobilend.trust import log as trust_log

PLEDGEABLE_LOAN = ("approved", "active")
LOGGED_EVENTS = ("registered", "released", "forfeited", "liquidated")


def record(
    session: Session,
    pledge: Pledge,
    kind: str,
    *,
    on: date,
    now: datetime,
    actor: str = "system",
    **detail: Any,
) -> None:
    """Append an event to the pledge's audit trail (the table refuses UPDATE and DELETE)."""
    event = CollateralEvent(
        pledge_id=pledge.id, kind=kind, business_date=on, detail=detail, actor=actor, created_at=now
    )
    session.add(event)
    if kind in LOGGED_EVENTS:  # ownership changes go in the transparency log (ids and a hash)
        body = {"pledge_id": pledge.id, "kind": kind, "business_date": on.isoformat(),
                "detail": detail}  # fmt: skip
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
        trust_log.record(session, kind=f"pledge_{kind}", at=now, digest=digest,
                         refs={"pledge_id": pledge.id, "loan_id": pledge.loan_id})  # fmt: skip


def get_pledge(session: Session, pledge_id: int, *, lock: bool = False) -> Pledge:
    stmt = select(Pledge).where(Pledge.id == pledge_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    pledge = session.scalar(stmt)
    if pledge is None:
        raise NotFound(f"pledge {pledge_id} not found", field="pledge_id")
    return pledge


def outstanding(loan: Loan) -> Decimal:
    """What the borrower owes now: principal plus interest, fees and penalty recognised."""
    return sum(
        (
            (i.principal - i.paid_principal)
            + (i.interest_accrued - i.paid_interest)
            + (i.fee_charged - i.paid_fee)
            + (i.penalty_charged - i.paid_penalty)
            for i in loan.installments
            if not i.cancelled
        ),
        ZERO,
    )


def maturity(loan: Loan) -> date:
    return max(i.due_date for i in loan.installments if not i.cancelled)


# ---------------------------------------------------------------- register


@dataclass(frozen=True)
class Registered:
    pledge: Pledge
    valuation: DeviceValuation
    provisioning_token: str | None  # device-lock mode: shown once, for the device's enrollment


def register(
    session: Session,
    *,
    loan_id: int,
    imei: str,
    storage_gb: int,
    condition: grading.Condition,
    custody_mode: str,
    business_date: date,
    now: datetime,
    model_key: str | None = None,
    location: str | None = None,
    actor: str = "system",
) -> Registered:
    """Value the phone and pledge it for a booked loan; one live pledge per IMEI (database)."""
    imei = catalog.validate_imei(imei)
    if custody_mode not in ("pawn", "device_lock"):
        raise ValidationFailed("custody_mode", "one-of", "custody_mode is pawn or device_lock")
    if custody_mode == "pawn" and not (location or "").strip():
        raise ValidationFailed("location", "required", "a pawned phone needs its store location")
    loan = loans.lock_loan(session, loan_id)
    if loan.status not in PLEDGEABLE_LOAN:
        raise Conflict(f"loan {loan_id} is {loan.status}; it cannot take a pledge", field="loan_id")
    model_key = _model_for(session, imei, model_key)
    terms = terms_for(session, loan.product_id)
    found = value_device(
        session,
        model_key=model_key,
        storage_gb=storage_gb,
        condition=condition,
        as_of=business_date,
        horizon=max(business_date, maturity(loan)),
        haircut=terms.haircut,
    )
    owed = outstanding(loan) if loan.status == "active" else loan.principal
    if owed > found.value.lending_value:
        raise ValidationFailed(
            "principal",
            "within-lending-value",
            f"the loan ({owed}) exceeds the phone's lending value ({found.value.lending_value})",
        )
    ltv = valuation.loan_to_value(owed, found.value.current_value)
    pledge = Pledge(
        loan_id=loan.id,
        product_id=loan.product_id,
        imei=imei,
        model_key=model_key,
        storage_gb=storage_gb,
        grade=found.grade.grade,
        condition=_condition_json(condition),
        carrier_locked=condition.carrier_locked,
        value_factor=found.carrier_factor,
        custody_mode=custody_mode,
        location=location.strip() if location else None,
        status="active",
        pledged_on=business_date,
        booking_value=found.value.current_value,
        lending_value=found.value.lending_value,
        current_value=found.value.current_value,
        outstanding=owed,
        ltv=ltv,
        ltv_status="ok",
        shortfall=ZERO,
        marked_on=business_date,
    )
    try:
        with session.begin_nested():
            session.add(pledge)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"IMEI {imei} already backs a live pledge", field="imei", rule="one-live-pledge"
        ) from exc
    record(session, pledge, "registered", on=business_date, now=now, actor=actor,
           valuation=found.as_json(), custody_mode=custody_mode)  # fmt: skip
    token = None
    if custody_mode == "device_lock":
        from mobilend.collateral import devices

        token = devices.provision(session, pledge=pledge, now=now)
    session.flush()
    return Registered(pledge, found, token)


def _model_for(session: Session, imei: str, model_key: str | None) -> str:
    """The model named, checked against the IMEI's TAC; or the model the TAC identifies."""
    from mobilend.collateral.service import model_by_imei

    by_tac = model_by_imei(session, imei)
    if model_key is None:
        if by_tac is None:
            raise ValidationFailed(
                "model_key", "required", "the IMEI's TAC is not in the catalog: name the model"
            )
        return by_tac.key
    if by_tac is not None and by_tac.key != model_key:
        raise ValidationFailed(
            "imei", "tac-mismatch", f"the IMEI's TAC belongs to {by_tac.key}, not {model_key}"
        )
    catalog.check_imei_matches_model(get_model(session, model_key), imei)
    return model_key


def _condition_json(c: grading.Condition) -> dict[str, Any]:
    return {
        "screen": c.screen,
        "body": c.body,
        "battery_health_pct": c.battery_health_pct,
        "failed_checks": list(c.failed_checks),
        "carrier_locked": c.carrier_locked,
    }


def check_disbursable(session: Session, loan: Loan) -> None:
    """A product with collateral terms (required) pays out only against a live pledge, and a
    device-lock phone only once its agent has enrolled."""
    from mobilend.collateral.models import CollateralTerms, Device

    terms = session.get(CollateralTerms, loan.product_id)
    if terms is None or not terms.required:
        return
    live = list(
        session.scalars(select(Pledge).where(Pledge.loan_id == loan.id, Pledge.status == "active"))
    )
    if not live:
        raise Conflict(
            f"loan {loan.id} needs a pledged phone before disbursement",
            field="loan_id",
            rule="pledge-required",
        )
    for pledge in live:
        if pledge.custody_mode != "device_lock":
            continue
        status = session.scalar(select(Device.status).where(Device.pledge_id == pledge.id))
        if status != "enrolled":
            raise Conflict(
                f"the phone of pledge {pledge.id} has not enrolled its lock agent yet",
                field="loan_id",
                rule="device-not-enrolled",
            )


# ---------------------------------------------------------------- release and default


def release(
    session: Session, pledge: Pledge, *, on: date, now: datetime, actor: str = "system", why: str
) -> None:
    """Give the phone back (pawn) or unenroll it (device lock); open margin calls end."""
    if pledge.status != "active":
        raise Conflict(f"pledge {pledge.id} is {pledge.status}", field="pledge_id")
    pledge.status, pledge.closed_on = "released", on
    _close_margin_calls(session, pledge, on, "cured")
    record(session, pledge, "released", on=on, now=now, actor=actor, reason=why)
    notices.notify(session, pledge, "released", on=on, now=now)
    if pledge.custody_mode == "device_lock":
        from mobilend.collateral import devices

        devices.command(session, pledge=pledge, action="release", reason=why, on=on, now=now)


def forfeit(
    session: Session, *, pledge_id: int, business_date: date, now: datetime, actor: str, reason: str
) -> Pledge:
    """The borrower defaulted: the lender may now sell the phone (a locked phone stays locked)."""
    pledge = get_pledge(session, pledge_id, lock=True)
    loan = loans.lock_loan(session, pledge.loan_id)
    if pledge.status != "active":
        raise Conflict(f"pledge {pledge.id} is {pledge.status}", field="pledge_id")
    if loan.status not in ("active", "written_off"):
        raise Conflict(f"loan {loan.id} is {loan.status}", field="pledge_id")
    if not reason.strip():
        raise ValidationFailed("reason", "required", "say why the pledge is forfeited")
    overdue = _days_past_due(session, loan.id, business_date)
    if loan.status == "active" and overdue == 0 and pledge.ltv_status != "liquidation":
        raise Conflict(
            "the loan is current and the loan-to-value is below liquidation: nothing to forfeit",
            field="pledge_id",
            rule="default-required",
        )
    pledge.status = "forfeited"
    _close_margin_calls(session, pledge, business_date, "expired")
    record(session, pledge, "forfeited", on=business_date, now=now, actor=actor,
           reason=reason, days_past_due=overdue, ltv=str(pledge.ltv))  # fmt: skip
    notices.notify(session, pledge, "forfeited", on=business_date, now=now)
    if pledge.custody_mode == "device_lock":
        from mobilend.collateral import devices

        devices.command(
            session, pledge=pledge, action="lock", reason="forfeited", on=business_date, now=now
        )
    session.flush()
    return pledge


def _days_past_due(session: Session, loan_id: int, on: date) -> int:
    oldest = session.scalar(
        select(Installment.due_date)
        .where(
            Installment.loan_id == loan_id,
            Installment.cancelled.is_(False),
            Installment.due_date < on,
            Installment.principal + Installment.interest
            > Installment.paid_principal + Installment.paid_interest,
        )
        .order_by(Installment.due_date)
        .limit(1)
    )
    return 0 if oldest is None else (on - oldest).days


@dataclass(frozen=True)
class Liquidation:
    pledge: Pledge
    repayment_id: int
    applied: Decimal  # proceeds applied to the loan
    surplus: Decimal  # owed back to the borrower (held as the loan's credit balance)
    remaining: Decimal  # still owed after the sale (the shortfall that stays as debt)


def liquidate(
    session: Session,
    *,
    pledge_id: int,
    proceeds: Decimal,
    sold_on: date,
    business_date: date,
    now: datetime,
    actor: str,
    buyer: str = "",
) -> Liquidation:
    """Post the sale proceeds of a forfeited phone through the loan engine and the ledger."""
    if proceeds <= 0:
        raise ValidationFailed("proceeds", "positive", "sale proceeds must be positive")
    pledge = get_pledge(session, pledge_id, lock=True)
    if pledge.status != "forfeited":
        raise Conflict(
            f"pledge {pledge.id} is {pledge.status}; only a forfeited pledge is sold",
            field="pledge_id",
        )
    loan = loans.lock_loan(session, pledge.loan_id)
    reference = f"liquidation of pledge {pledge.id}"
    payoff = None
    if loan.status == "active":
        payoff = loans.payoff_quote(
            session, loan_id=loan.id, value_date=sold_on, business_date=business_date
        )
    if payoff is not None and proceeds > payoff.due and payoff.future_principal > 0:
        payment = loans.prepay(
            session, loan_id=loan.id, value_date=sold_on, business_date=business_date,
            amount=proceeds, mode="reduce_term", reference=reference,
        )  # fmt: skip
    else:
        payment = loans.repay(
            session, loan_id=loan.id, amount=proceeds, value_date=sold_on,
            business_date=business_date, reference=reference,
        )  # fmt: skip
    session.flush()
    session.refresh(loan)
    surplus = payment.unallocated
    remaining = outstanding(loan) if loan.status in ("active", "written_off") else ZERO
    pledge.status, pledge.closed_on = "liquidated", business_date
    pledge.sale_proceeds, pledge.surplus = proceeds, surplus
    record(session, pledge, "liquidated", on=business_date, now=now, actor=actor,
           proceeds=str(proceeds), sold_on=sold_on.isoformat(), buyer=buyer,
           repayment_id=payment.id, entry_id=payment.entry_id, surplus=str(surplus),
           remaining=str(remaining))  # fmt: skip
    session.flush()
    return Liquidation(pledge, payment.id, proceeds - surplus, surplus, remaining)


def _close_margin_calls(session: Session, pledge: Pledge, on: date, status: str) -> None:
    for call in session.scalars(
        select(MarginCall).where(MarginCall.pledge_id == pledge.id, MarginCall.status == "open")
    ):
        call.status, call.closed_on = status, on


# ---------------------------------------------------------------- after a payment


def after_payment(session: Session, loan: Loan, *, business_date: date, now: datetime) -> None:
    """Called by the loan engine after money came in: release on payoff, re-mark, unlock."""
    pledges = list(
        session.scalars(select(Pledge).where(Pledge.loan_id == loan.id, Pledge.status == "active"))
    )
    for pledge in pledges:
        if loan.status == "closed":
            release(session, pledge, on=business_date, now=now, why="loan repaid")
            continue
        from mobilend.collateral import marking

        marking.mark_one(session, pledge, loan=loan, on=business_date, now=now)
        if pledge.custody_mode == "device_lock":
            from mobilend.collateral import devices

            devices.apply_policy(session, pledge=pledge, loan=loan, on=business_date, now=now)
