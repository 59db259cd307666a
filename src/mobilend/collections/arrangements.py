"""Promises to pay, restructuring offers and legal referral of collection cases.

Promises: one open promise per case; it is graded by `promises.evaluate` with no grace days
(kept when the loan's posted repayments dated from the day it was made to its date cover it,
broken once that date has passed without them; a partly kept promise counts as broken, with
what was paid). A broken promise re-queues the case: back to "open", unassigned, and in its
bucket's high segment.

Restructuring: an offer is checked and priced by loans.restructure on the day it is made
(limits of collections.promises, the loan's rate cap) and valid for `OFFER_DAYS`; accepting it
re-runs the check on the acceptance day, applies the new schedule, and sets the loan's
class floor to special mention (关注: the 2023 Measures classify a restructured asset at least
special mention) in loan_delinquency.

Legal: a case may be referred once its loan is `legal_after_dpd` days past due (the product's
servicing policy; None switches referral off).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.collections import queues
from mobilend.collections.models import (
    CollectionCase,
    LegalEscalation,
    PromiseRecord,
    Restructuring,
)
from mobilend.collections.promises import (
    PromisePolicy,
    PromiseToPay,
    RestructuringLimits,
    evaluate,
)
from mobilend.collections.service import (
    delinquency_of,
    get_agent,
    get_case,
    policy_of,
    require_open,
)
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.loans import restructure as engine
from mobilend.loans.models import Loan, Repayment
from mobilend.loans.service import lock_loan
from mobilend.servicing.classification import LoanClass

PROMISE_POLICY = PromisePolicy(grace_days=0)
MAX_PROMISE_DAYS = 30  # a promise falls due within this many days of being made
OFFER_DAYS = 7  # a restructuring offer can be accepted for this many days
LIMITS = RestructuringLimits()  # the defaults of collections.promises (docs/collections.md)
PAYMENT_KINDS = ("repayment", "prepayment", "recovery")


# ---------------------------------------------------------------- promises to pay


def make_promise(
    session: Session,
    *,
    case_id: int,
    amount: Decimal,
    due_date: date,
    business_date: date,
    agent_id: int | None = None,
) -> PromiseRecord:
    case = get_case(session, case_id, lock=True)
    require_open(case)
    if agent_id is not None:
        get_agent(session, agent_id)
    promise = PromiseToPay(amount=amount, due_date=due_date, made_on=business_date)
    if due_date > business_date + timedelta(days=MAX_PROMISE_DAYS):
        raise ValidationFailed(
            "due_date", "promise-horizon", f"a promise falls due within {MAX_PROMISE_DAYS} days"
        )
    if _open_promise(session, case.id) is not None:
        raise Conflict(f"case {case.id} has an open promise", field="case_id", rule="open-promise")
    record = PromiseRecord(
        case_id=case.id,
        loan_id=case.loan_id,
        agent_id=agent_id,
        amount=promise.amount,
        made_on=business_date,
        due_date=due_date,
        status="open",
        paid=Decimal(0),
    )
    session.add(record)
    if case.status == "open":
        case.status = "promised"
    session.flush()
    return record


def _open_promise(session: Session, case_id: int) -> PromiseRecord | None:
    return session.scalar(
        select(PromiseRecord).where(
            PromiseRecord.case_id == case_id, PromiseRecord.status == "open"
        )
    )


def promises_of(session: Session, case_id: int) -> list[PromiseRecord]:
    return list(
        session.scalars(
            select(PromiseRecord).where(PromiseRecord.case_id == case_id).order_by(PromiseRecord.id)
        )
    )


def grade_promises(session: Session, *, business_date: date) -> tuple[int, int]:
    """Grade every open promise made by `business_date`: (kept, broken) newly found."""
    kept = broken = 0
    open_ = session.scalars(
        select(PromiseRecord)
        .where(PromiseRecord.status == "open", PromiseRecord.made_on <= business_date)
        .order_by(PromiseRecord.id)
    ).all()
    for record in open_:
        payments = [
            (value_date, amount)
            for value_date, amount in session.execute(
                select(Repayment.value_date, Repayment.amount).where(
                    Repayment.loan_id == record.loan_id,
                    Repayment.status == "posted",
                    Repayment.kind.in_(PAYMENT_KINDS),
                    Repayment.value_date <= business_date,
                )
            ).all()
        ]
        promise = PromiseToPay(record.amount, record.due_date, record.made_on)
        graded = evaluate(promise, payments, business_date, policy=PROMISE_POLICY)
        record.paid = graded.paid
        if graded.status == "pending":
            continue
        record.status = "kept" if graded.status == "kept" else "broken"
        record.resolved_on = graded.kept_on or business_date
        case = get_case(session, record.case_id)
        if record.status == "kept":
            kept += 1
            if case.status == "promised":
                case.status = "open"
        else:
            broken += 1
            _requeue_broken(session, case)
    session.flush()
    return kept, broken


def _requeue_broken(session: Session, case: CollectionCase) -> None:
    case.broken_promises += 1
    if case.status in ("promised", "open"):
        case.status = "open"
        row = delinquency_of(session, case.loan_id)
        if row is not None:
            case.queue = queues.queue_for(
                row.bucket, provision=row.provision, broken_promises=case.broken_promises
            )
        case.agent_id, case.assigned_on = None, None


# ---------------------------------------------------------------- restructuring


def offer_restructuring(
    session: Session,
    *,
    case_id: int,
    business_date: date,
    extension_months: int = 0,
    new_installment: Decimal | None = None,
) -> Restructuring:
    """Check and price an offer on `business_date`; nothing changes on the loan yet."""
    case = get_case(session, case_id)
    require_open(case)
    plan = engine.preview(
        session,
        loan_id=case.loan_id,
        business_date=business_date,
        **_offer_terms(session, case.loan_id, extension_months, new_installment),
    )
    record = Restructuring(
        loan_id=case.loan_id,
        case_id=case.id,
        status="offered",
        extension_months=extension_months,
        new_installment=new_installment,
        offered_on=business_date,
        valid_until=business_date + timedelta(days=OFFER_DAYS),
        accepted_on=None,
        dpd=_dpd(session, case.loan_id),
        outstanding_principal=plan.outstanding_principal,
        arrears=plan.arrears,
        periods=len(plan.installments),
        schedule=plan.schedule_json(),
        previous_terms=None,
    )
    session.add(record)
    session.flush()
    return record


def accept_restructuring(
    session: Session, *, restructuring_id: int, business_date: date
) -> Restructuring:
    """Apply an offer on `business_date` and floor the loan's class at special mention."""
    record = session.get(Restructuring, restructuring_id)
    if record is None:
        raise NotFound(f"restructuring {restructuring_id} not found", field="restructuring_id")
    # the loan first (the lock order of every loan change), then the offer re-read under it:
    # a second acceptance waiting here sees "accepted" and is refused, never applied twice
    lock_loan(session, record.loan_id)
    record = session.get(
        Restructuring, restructuring_id, with_for_update=True, populate_existing=True
    )
    assert record is not None
    if record.status != "offered":
        raise Conflict(
            f"restructuring {record.id} is {record.status}", field="restructuring_id",
            rule="offered",
        )  # fmt: skip
    if business_date > record.valid_until:
        raise Conflict(
            f"the offer lapsed on {record.valid_until}", field="restructuring_id",
            rule="offer-expired",
        )  # fmt: skip
    if business_date < record.offered_on:
        raise ValidationFailed("business_date", "after-offer", "accepted before it was offered")
    terms = _offer_terms(session, record.loan_id, record.extension_months, record.new_installment)
    plan, previous = engine.restructure(
        session, loan_id=record.loan_id, business_date=business_date, **terms
    )
    record.status, record.accepted_on, record.previous_terms = "accepted", business_date, previous
    record.outstanding_principal, record.arrears = plan.outstanding_principal, plan.arrears
    record.periods, record.schedule = len(plan.installments), plan.schedule_json()
    _floor_special_mention(session, record.loan_id, business_date)
    session.flush()
    return record


def _offer_terms(
    session: Session, loan_id: int, extension_months: int, new_installment: Decimal | None
) -> dict[str, object]:
    done = session.scalar(
        select(func.count())
        .select_from(Restructuring)
        .where(Restructuring.loan_id == loan_id, Restructuring.status == "accepted")
    )
    return {
        "extension_months": extension_months,
        "new_installment": new_installment,
        "limits": LIMITS,
        "days_past_due": _dpd(session, loan_id),
        "restructurings_so_far": int(done or 0),
    }


def _dpd(session: Session, loan_id: int) -> int:
    row = delinquency_of(session, loan_id)
    return row.dpd if row is not None else 0


def _floor_special_mention(session: Session, loan_id: int, business_date: date) -> None:
    """Floor the loan's class at special mention (关注) and refresh it for the new schedule."""
    from mobilend.servicing.status import refresh_delinquency

    def refresh() -> None:
        refresh_delinquency(session, business_date=business_date, lo=loan_id, hi=loan_id + 1)

    row = delinquency_of(session, loan_id)
    if row is None:
        refresh()
        row = delinquency_of(session, loan_id)
        assert row is not None  # refresh writes a row for every active loan
    floor = LoanClass.SPECIAL_MENTION
    if row.class_floor is None or LoanClass(row.class_floor).rank < floor.rank:
        row.class_floor = floor.value
    refresh()


def restructurings_of(session: Session, loan_id: int) -> list[Restructuring]:
    return list(
        session.scalars(
            select(Restructuring).where(Restructuring.loan_id == loan_id).order_by(Restructuring.id)
        )
    )


# ---------------------------------------------------------------- legal


def escalate_to_legal(
    session: Session,
    *,
    case_id: int,
    business_date: date,
    reason: str,
    agent_id: int | None = None,
) -> LegalEscalation:
    """Refer the case to legal review; allowed from the product's legal_after_dpd."""
    case = get_case(session, case_id, lock=True)
    require_open(case)
    if case.status == "legal":
        raise Conflict(f"case {case.id} is already with legal", field="case_id", rule="legal")
    if not reason.strip():
        raise ValidationFailed("reason", "non-empty", "say why the case goes to legal")
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    after = policy_of(session, loan).legal_after_dpd
    row = delinquency_of(session, case.loan_id)
    dpd = row.dpd if row is not None else 0
    if after is None:
        raise Conflict(
            "the product does not refer loans to legal", field="case_id", rule="legal-off"
        )
    if dpd < after:
        raise Conflict(
            f"{dpd} days past due; legal referral from {after}", field="case_id",
            rule="legal-after-dpd",
        )  # fmt: skip
    if agent_id is not None:
        get_agent(session, agent_id)
    record = LegalEscalation(
        case_id=case.id,
        loan_id=case.loan_id,
        agent_id=agent_id,
        escalated_on=business_date,
        dpd=dpd,
        exposure=row.exposure if row is not None else Decimal(0),
        reason=reason.strip()[:300],
    )
    session.add(record)
    case.status, case.queue = "legal", queues.LEGAL_QUEUE
    case.agent_id, case.assigned_on = None, None
    session.flush()
    return record


def legal_of(session: Session, case_id: int) -> list[LegalEscalation]:
    return list(
        session.scalars(
            select(LegalEscalation)
            .where(LegalEscalation.case_id == case_id)
            .order_by(LegalEscalation.id)
        )
    )
