"""Loan lifecycle use cases: book, disburse, accrue, repay, prepay, reverse, write off, recover.

Every function takes the session of the caller's unit of work and a business date; none
commits. Each business event posts one balanced journal entry (see ledger.service) and
updates the installment sub-ledger in the same transaction. The loan row is locked first
(`SELECT ... FOR UPDATE` on PostgreSQL; SQLite transactions start with BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.core.money import CENT, ZERO, quantize
from mobilend.ledger.accounts import Account
from mobilend.ledger.service import Line, loan_balances, post_entry, reverse_entry
from mobilend.loans.accrual import interest_accrued_to, penalty_between
from mobilend.loans.allocation import AllocationLine, Component, Due, Waterfall, allocate
from mobilend.loans.codec import terms_from_dict, terms_to_dict
from mobilend.loans.models import Allocation, Installment, Loan, Product, Repayment
from mobilend.loans.quoting import quote, terms_for
from mobilend.loans.schedule import build_schedule, reschedule_after_prepayment
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.loans.terms import LoanTerms, ScheduleType

HUNDRED = Decimal(100)
RECEIVABLE_OF = {
    Component.PRINCIPAL: Account.PRINCIPAL_RECEIVABLE,
    Component.INTEREST: Account.INTEREST_RECEIVABLE,
    Component.FEE: Account.FEE_RECEIVABLE,
    Component.PENALTY: Account.PENALTY_RECEIVABLE,
}
PAID_FIELD = {
    Component.PRINCIPAL: "paid_principal",
    Component.INTEREST: "paid_interest",
    Component.FEE: "paid_fee",
    Component.PENALTY: "paid_penalty",
}


# ---------------------------------------------------------------- products


def create_product(session: Session, data: ProductIn) -> Product:
    if session.scalar(select(Product.id).where(Product.code == data.code)) is not None:
        raise Conflict(f"product {data.code!r} already exists", field="code")
    product = Product(
        code=data.code,
        name=data.name,
        currency=data.currency,
        config=data.config.model_dump(mode="json"),
    )
    session.add(product)
    session.flush()
    return product


def get_product(session: Session, code: str) -> Product:
    product = session.scalar(select(Product).where(Product.code == code))
    if product is None:
        raise NotFound(f"product {code!r} not found", field="product_code")
    return product


def product_config(product: Product) -> ProductConfig:
    return ProductConfig.model_validate(product.config)


# ---------------------------------------------------------------- booking


def create_loan(session: Session, data: LoanIn) -> Loan:
    """Book a loan from a quote request: terms and schedule frozen on the loan."""
    product = get_product(session, data.product_code)
    config = product_config(product)
    terms = terms_for(
        config,
        currency=product.currency,
        principal=data.principal,
        periods=data.periods,
        start=data.start_date,
        annual_rate_pct=data.annual_rate_pct,
        first_due_date=data.first_due_date,
    )
    q = quote(terms, apr_cap_pct=config.apr_cap_pct)
    loan = Loan(
        product_id=product.id,
        borrower_ref=data.borrower_ref,
        status="approved",
        currency=product.currency,
        principal=data.principal,
        terms=_loan_terms_json(terms, config),
        penalty_carry=ZERO,
    )
    loan.installments = _installment_rows(q.schedule.installments)
    session.add(loan)
    session.flush()
    return loan


def _loan_terms_json(terms: LoanTerms, config: ProductConfig) -> dict[str, object]:
    """The terms plus the servicing settings copied from the product at booking."""
    data = terms_to_dict(terms)
    data["servicing"] = {
        "penalty_rate_pct": str(config.penalty_rate_pct),
        "late_fee": str(config.late_fee),
        "late_fee_grace_days": config.late_fee_grace_days,
        "waterfall": config.waterfall,
        "allocation_strategy": config.allocation_strategy,
        "prepayment_mode": config.prepayment_mode,
        "apr_cap_pct": str(config.apr_cap_pct),
    }
    return data


def _installment_rows(installments: Iterable[Any], first_number: int = 1) -> list[Installment]:
    rows = []
    for offset, inst in enumerate(installments):
        rows.append(
            Installment(
                number=first_number + offset,
                start_date=inst.start_date,
                due_date=inst.due_date,
                principal=inst.principal,
                interest=inst.interest,
                fee=inst.fee,
                interest_accrued=ZERO,
                fee_charged=ZERO,
                penalty_charged=ZERO,
                paid_principal=ZERO,
                paid_interest=ZERO,
                paid_fee=ZERO,
                paid_penalty=ZERO,
                late_fee_charged=False,
                cancelled=False,
            )
        )
    return rows


def terms_of(loan: Loan) -> LoanTerms:
    data = {k: v for k, v in loan.terms.items() if k != "servicing"}
    return terms_from_dict(data)


def servicing_of(loan: Loan) -> dict[str, object]:
    return dict(loan.terms["servicing"])


def lock_loan(session: Session, loan_id: int) -> Loan:
    """Load a loan for change, holding its row lock until the unit of work ends."""
    # The installments are read by a second statement, after the lock is held: joined into
    # the locking statement they would come from its snapshot, taken before the wait.
    loan = session.scalar(
        select(Loan)
        .where(Loan.id == loan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    return loan


def get_loan(session: Session, loan_id: int) -> Loan:
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    return loan


# ---------------------------------------------------------------- disbursement


def disburse(
    session: Session, *, loan_id: int, value_date: date, business_date: date | None = None
) -> Loan:
    """Pay out the loan. A value date other than the booked start rebuilds the schedule."""
    loan = lock_loan(session, loan_id)
    if loan.status != "approved":
        raise Conflict(f"loan {loan_id} is {loan.status}, not approved", field="loan_id")
    if business_date is not None and value_date > business_date:
        raise ValidationFailed(
            "value_date", "not-future", "value_date cannot be after the business date"
        )
    from mobilend.collateral.pledges import check_disbursable  # secured products need a pledge

    check_disbursable(session, loan)
    terms = terms_of(loan)
    if value_date != terms.start:
        if terms.first_due_date is not None and terms.first_due_date <= value_date:
            raise ValidationFailed(
                "value_date", "before-first-due", "value_date must be before the first due date"
            )
        data = dict(loan.terms)
        data["start"] = value_date.isoformat()
        loan.terms = data
        terms = terms_of(loan)
        for old in list(loan.installments):
            session.delete(old)
        session.flush()
        loan.installments = _installment_rows(build_schedule(terms).installments)
    schedule = build_schedule(terms)
    fee = schedule.upfront_fee
    lines = [
        Line(Account.PRINCIPAL_RECEIVABLE, schedule.financed_principal, loan.id),
        Line(Account.CASH, -schedule.disbursed_amount, loan.id),
    ]
    if fee:
        lines.append(Line(Account.FEE_INCOME, -fee, loan.id))
    post_entry(
        session,
        kind="disbursement",
        business_date=value_date,
        currency=loan.currency,
        loan_id=loan.id,
        lines=lines,
        description=f"disbursement of loan {loan.id}",
    )
    loan.status = "active"
    loan.disbursed_on = value_date
    loan.accrued_through = value_date
    session.flush()
    return loan


# ---------------------------------------------------------------- accrual


def accrue(session: Session, *, loan_id: int, through: date) -> Loan:
    loan = lock_loan(session, loan_id)
    accrue_locked(session, loan, through)
    return loan


def accrue_locked(session: Session, loan: Loan, through: date) -> None:
    """Recognise interest, fees and penalty interest through the end of `through` (idempotent).

    Interest: each installment's scheduled interest spread evenly over its days, cumulative
    figures truncated to the cent (accrual.interest_accrued_to), so the sub-cent remainder is
    carried and the total equals the schedule exactly on the due date. Installment fees are
    charged on the due date; a late fee once, when an installment is still unpaid more than
    `late_fee_grace_days` after it fell due. Penalty interest (罚息) runs on overdue principal
    from the day after the due date, on the principal outstanding at the start of each day.
    """
    if loan.status != "active" or loan.accrued_through is None or through <= loan.accrued_through:
        return
    terms = terms_of(loan)
    servicing = servicing_of(loan)
    penalty_rate = Decimal(str(servicing["penalty_rate_pct"])) / HUNDRED
    late_fee = Decimal(str(servicing["late_fee"]))
    grace = int(str(servicing["late_fee_grace_days"]))
    first_day = loan.accrued_through + timedelta(days=1)
    interest = fee = penalty = ZERO
    carry = loan.penalty_carry
    for inst in _live(loan):
        target = interest_accrued_to(inst.interest, inst.start_date, inst.due_date, through)
        interest += target - inst.interest_accrued
        inst.interest_accrued = target
        if inst.due_date <= through and inst.fee_charged < inst.fee and not inst.late_fee_charged:
            fee += inst.fee - inst.fee_charged
            inst.fee_charged = inst.fee
        overdue_principal = inst.principal - inst.paid_principal
        if overdue_principal <= 0:
            continue
        if (
            late_fee
            and not inst.late_fee_charged
            and through > inst.due_date + timedelta(days=grace)
        ):
            fee += late_fee
            inst.fee_charged += late_fee
            inst.late_fee_charged = True
        start = max(first_day, inst.due_date + timedelta(days=1))
        if penalty_rate and start <= through:
            posted, carry = penalty_between(
                overdue_principal,
                penalty_rate,
                start,
                through + timedelta(days=1),
                terms.day_count,
                carry,
            )
            penalty += posted
            inst.penalty_charged += posted
    loan.penalty_carry = carry
    loan.accrued_through = through
    post_entry(
        session,
        kind="accrual",
        business_date=through,
        currency=loan.currency,
        loan_id=loan.id,
        description=f"accrual {first_day}..{through}",
        lines=[
            Line(Account.INTEREST_RECEIVABLE, interest, loan.id),
            Line(Account.INTEREST_INCOME, -interest, loan.id),
            Line(Account.FEE_RECEIVABLE, fee, loan.id),
            Line(Account.FEE_INCOME, -fee, loan.id),
            Line(Account.PENALTY_RECEIVABLE, penalty, loan.id),
            Line(Account.PENALTY_INCOME, -penalty, loan.id),
        ],
    )
    session.flush()


def _live(loan: Loan) -> list[Installment]:
    return [i for i in loan.installments if not i.cancelled]


# ---------------------------------------------------------------- repayment


def _dues(loan: Loan) -> list[Due]:
    return [
        Due(
            installment=i.number,
            due_date=i.due_date,
            penalty=i.penalty_charged - i.paid_penalty,
            fee=i.fee_charged - i.paid_fee,
            interest=i.interest_accrued - i.paid_interest,
            principal=i.principal - i.paid_principal,
        )
        for i in _live(loan)
    ]


def _waterfall(loan: Loan) -> Waterfall:
    servicing = servicing_of(loan)
    return Waterfall.parse(str(servicing["waterfall"]), str(servicing["allocation_strategy"]))


def _check_value_date(loan: Loan, value_date: date, business_date: date) -> None:
    if value_date > business_date:
        raise ValidationFailed(
            "value_date", "not-future", "value_date cannot be after the business date"
        )
    if loan.accrued_through is not None and value_date < loan.accrued_through:
        raise ValidationFailed(
            "value_date",
            "not-before-accrual",
            f"value_date {value_date} is before the loan's accrual date {loan.accrued_through}",
        )


def repay(
    session: Session,
    *,
    loan_id: int,
    amount: Decimal,
    value_date: date,
    business_date: date,
    reference: str = "",
    now: datetime | None = None,
) -> Repayment:
    """Apply a repayment by the product waterfall; anything left is held as a credit balance.

    With `now` (the API passes its clock's), the loan's pledged phones react at once: released
    on payoff, re-marked, unlocked when the loan is current again (collateral.pledges).
    """
    loan = lock_loan(session, loan_id)
    if loan.status == "written_off":
        _check_value_date(loan, value_date, business_date)
        return _recover_locked(session, loan, amount, value_date, reference)
    if loan.status != "active":
        raise Conflict(
            f"loan {loan_id} is {loan.status}; repayments need an active loan", field="loan_id"
        )
    _check_value_date(loan, value_date, business_date)
    accrue_locked(session, loan, value_date)
    repayment = Repayment(
        loan_id=loan.id,
        kind="repayment",
        amount=amount,
        value_date=value_date,
        reference=reference,
        status="posted",
    )
    session.add(repayment)
    _apply(session, loan, repayment)
    _close_if_repaid(loan, value_date)
    session.flush()
    _after_payment(session, loan, business_date, now)
    return repayment


def _after_payment(session: Session, loan: Loan, business_date: date, now: datetime | None) -> None:
    if now is None:
        return
    from mobilend.collateral.pledges import after_payment  # the collateral domain reacts

    after_payment(session, loan, business_date=business_date, now=now)


def _apply(session: Session, loan: Loan, repayment: Repayment) -> None:
    """Allocate a repayment over what is due on its value date and post its entry."""
    allocation = allocate(
        repayment.amount, _dues(loan), _waterfall(loan), as_of=repayment.value_date
    )
    _post_application(session, loan, repayment, list(allocation.lines), allocation.unallocated)


def _post_application(
    session: Session,
    loan: Loan,
    repayment: Repayment,
    lines: list[AllocationLine],
    unallocated: Decimal,
) -> None:
    by_number = {i.number: i for i in loan.installments}
    ledger_lines = [Line(Account.CASH, repayment.amount, loan.id)]
    for line in lines:
        ledger_lines.append(Line(RECEIVABLE_OF[line.component], -line.amount, loan.id))
        inst = by_number[line.installment]
        field = PAID_FIELD[line.component]
        setattr(inst, field, getattr(inst, field) + line.amount)
    if unallocated:
        ledger_lines.append(Line(Account.SUSPENSE, -unallocated, loan.id))
    entry = post_entry(
        session,
        kind=repayment.kind,
        business_date=repayment.value_date,
        currency=loan.currency,
        loan_id=loan.id,
        lines=ledger_lines,
        description=f"{repayment.kind} {repayment.reference}".strip(),
    )
    assert entry is not None
    repayment.entry = entry
    repayment.unallocated = unallocated
    for line in lines:
        session.add(
            Allocation(
                repayment=repayment,
                entry=entry,
                installment_number=line.installment,
                component=line.component.value,
                amount=line.amount,
            )
        )


def _close_if_repaid(loan: Loan, on: date) -> None:
    owed = sum(
        (i.principal - i.paid_principal)
        + (i.interest - i.paid_interest)
        + (max(i.fee, i.fee_charged) - i.paid_fee)
        + (i.penalty_charged - i.paid_penalty)
        for i in _live(loan)
    )
    if owed == 0:
        loan.status = "closed"
        loan.closed_on = on


# ---------------------------------------------------------------- prepayment


@dataclass(frozen=True)
class Payoff:
    """What settles the loan on a date: everything due, plus future principal and the interest
    accrued so far in the current period. Unaccrued future interest is not charged."""

    value_date: date
    due: Decimal
    accrued_interest: Decimal
    future_principal: Decimal

    @property
    def total(self) -> Decimal:
        return self.due + self.accrued_interest + self.future_principal


def _payoff(loan: Loan, value_date: date) -> Payoff:
    due = future_principal = accrued = ZERO
    for d, inst in zip(_dues(loan), _live(loan), strict=True):
        if inst.due_date <= value_date:
            due += d.penalty + d.fee + d.interest + d.principal
        else:
            future_principal += d.principal
            accrued += d.interest + d.penalty + d.fee
    return Payoff(value_date, due, accrued, future_principal)


def payoff_quote(
    session: Session, *, loan_id: int, value_date: date, business_date: date
) -> Payoff:
    """Read-only: the amount that settles the loan on `value_date` (no accrual is posted)."""
    loan = get_loan(session, loan_id)
    if loan.status != "active":
        raise Conflict(f"loan {loan_id} is {loan.status}", field="loan_id")
    _check_value_date(loan, value_date, business_date)
    savepoint = session.begin_nested()
    try:
        accrue_locked(session, loan, value_date)
        return _payoff(loan, value_date)
    finally:
        savepoint.rollback()


def prepay(
    session: Session,
    *,
    loan_id: int,
    value_date: date,
    business_date: date,
    amount: Decimal | None = None,
    mode: str | None = None,
    reference: str = "",
    now: datetime | None = None,
) -> Repayment:
    """Prepay: settle what is due, then principal ahead of schedule with its accrued interest.

    Full (amount None or >= payoff): the loan closes; interest not yet accrued is not charged;
    any excess is held as a credit balance. Partial: the amount beyond what is due buys
    principal X together with the interest accrued so far on X (accrued x X / outstanding);
    both are booked on a cut installment dated `value_date`. The remaining principal is
    re-amortized from the current period's start over the remaining due dates
    (reduce_installment) or over fewer of them (reduce_term), and the interest already
    accrued on it moves to the first new installment, so no day's interest is charged twice.
    """
    loan = lock_loan(session, loan_id)
    if loan.status != "active":
        raise Conflict(
            f"loan {loan_id} is {loan.status}; prepayment needs an active loan", field="loan_id"
        )
    _check_value_date(loan, value_date, business_date)
    mode = mode or str(servicing_of(loan)["prepayment_mode"])
    accrue_locked(session, loan, value_date)
    payoff = _payoff(loan, value_date)
    if payoff.future_principal == 0:
        raise Conflict("nothing is left to prepay; post a repayment instead", field="amount")
    amount = payoff.total if amount is None else amount
    beyond = amount - payoff.due
    if beyond <= 0:
        raise ValidationFailed(
            "amount",
            "above-due",
            f"a prepayment must exceed what is due ({payoff.due}); post a repayment instead",
        )
    outstanding, accrued = payoff.future_principal, payoff.accrued_interest
    if beyond >= outstanding + accrued:
        ahead, interest = outstanding, accrued
    else:
        # X + accrued * X / outstanding = beyond, X in cents; the interest share rounded once.
        first_guess = (beyond * outstanding / (outstanding + accrued)).quantize(CENT, ROUND_DOWN)
        interest = quantize(accrued * first_guess / outstanding)
        ahead = beyond - interest
        if ahead >= outstanding:  # within a cent of the payoff: settle it in full
            ahead, interest = outstanding, accrued
    if ahead <= 0:
        raise ValidationFailed("amount", "above-due", "the amount beyond what is due is too small")
    _cut_schedule(session, loan, value_date, ahead, interest, mode)
    repayment = Repayment(
        loan_id=loan.id,
        kind="prepayment",
        amount=amount,
        value_date=value_date,
        prepay_mode=mode if ahead < outstanding else "full",
        reference=reference,
    )
    session.add(repayment)
    session.flush()
    _apply(session, loan, repayment)
    _close_if_repaid(loan, value_date)
    _after_payment(session, loan, business_date, now)
    return repayment


def _cut_schedule(
    session: Session, loan: Loan, value_date: date, ahead: Decimal, cut_interest: Decimal, mode: str
) -> None:
    """Replace the not-yet-due installments by a cut installment due on `value_date` (the
    principal paid ahead and the interest accrued on it) and the re-amortized rest."""
    future = [i for i in _live(loan) if i.due_date > value_date]
    outstanding = sum((i.principal - i.paid_principal for i in future), ZERO)
    accrued = sum((i.interest_accrued - i.paid_interest for i in future), ZERO)
    remaining = outstanding - ahead
    current = future[0]
    terms = terms_of(loan)
    next_number = max(i.number for i in loan.installments) + 1
    cut = _installment_rows([current], first_number=next_number)[0]
    cut.due_date = value_date
    cut.principal, cut.interest, cut.fee = ahead, cut_interest, ZERO
    cut.interest_accrued = cut_interest
    for inst in future:
        inst.cancelled = True
    loan.installments.append(cut)
    if remaining > 0:
        per_period = (
            current.principal
            if terms.schedule in (ScheduleType.EQUAL_PRINCIPAL, ScheduleType.FLAT)
            else current.principal + current.interest
        )
        new = reschedule_after_prepayment(
            terms,
            remaining_principal=remaining,
            from_date=current.start_date,
            remaining_due_dates=[i.due_date for i in future],
            mode=mode,  # type: ignore[arg-type]
            current_installment=per_period,
        )
        rows = _installment_rows(new, first_number=next_number + 1)
        rows[0].interest_accrued = accrued - cut_interest
        loan.installments.extend(rows)
    session.flush()


# ---------------------------------------------------------------- reversal


def reverse_repayment(
    session: Session, *, repayment_id: int, business_date: date, reason: str = ""
) -> Repayment:
    """Reverse a repayment; repayments applied after it are unwound and re-applied in order.

    Corrections are reversals: every unwound application gets an exact reversing entry and
    every re-application a new entry. Prepayments change the schedule, so a reversal that
    would unwind a prepayment is refused (reverse the prepayment last-first instead).
    """
    target = session.get(Repayment, repayment_id)
    if target is None:
        raise NotFound(f"repayment {repayment_id} not found", field="repayment_id")
    loan = lock_loan(session, target.loan_id)
    session.refresh(target)
    if target.status == "reversed":
        raise Conflict(f"repayment {repayment_id} is already reversed", field="repayment_id")
    later = list(
        session.scalars(
            select(Repayment)
            .where(
                Repayment.loan_id == loan.id, Repayment.status == "posted", Repayment.id > target.id
            )
            .order_by(Repayment.id)
        )
    )
    if loan.status == "written_off" and target.kind != "recovery":
        raise Conflict(
            "the loan is written off; only recoveries can be reversed", field="repayment_id"
        )
    if any(r.kind == "refund" for r in later) or target.kind == "refund":
        raise Conflict(
            "a credit refund was paid after this repayment; it cannot be unwound",
            field="repayment_id",
        )
    if any(r.kind == "prepayment" for r in later) or (target.kind == "prepayment" and later):
        raise Conflict(
            "a prepayment was posted after this repayment; reverse the later payments first",
            field="repayment_id",
        )
    if target.kind == "prepayment":
        raise Conflict(
            "prepayment reversal is not supported; post a correcting loan", field="repayment_id"
        )
    for repayment in reversed(later):
        _unwind(session, loan, repayment, business_date, "re-allocation")
    _unwind(session, loan, target, business_date, reason or "reversal")
    target.status = "reversed"
    if loan.status == "closed":
        loan.status, loan.closed_on = "active", None
    for repayment in later:
        _apply(session, loan, repayment)
    _close_if_repaid(loan, business_date)
    session.flush()
    return target


def _unwind(
    session: Session, loan: Loan, repayment: Repayment, business_date: date, why: str
) -> None:
    assert repayment.entry_id is not None
    reverse_entry(
        session, repayment.entry_id, business_date=business_date, kind="reversal", reason=why
    )
    by_number = {i.number: i for i in loan.installments}
    rows = session.scalars(select(Allocation).where(Allocation.entry_id == repayment.entry_id))
    for row in rows:
        inst = by_number[row.installment_number]
        field = PAID_FIELD[Component(row.component)]
        setattr(inst, field, getattr(inst, field) - row.amount)
    repayment.entry = None
    session.flush()


# ---------------------------------------------------------------- write-off and recovery


def write_off(session: Session, *, loan_id: int, value_date: date, business_date: date) -> Loan:
    """Move every receivable of the loan to write-off expense; later receipts are recoveries."""
    loan = lock_loan(session, loan_id)
    if loan.status != "active":
        raise Conflict(
            f"loan {loan_id} is {loan.status}; only active loans are written off", field="loan_id"
        )
    _check_value_date(loan, value_date, business_date)
    accrue_locked(session, loan, value_date)
    balances = loan_balances(session, loan.id)
    receivables = [
        Account.PRINCIPAL_RECEIVABLE,
        Account.INTEREST_RECEIVABLE,
        Account.FEE_RECEIVABLE,
        Account.PENALTY_RECEIVABLE,
    ]
    total = sum((balances[a] for a in receivables), ZERO)
    post_entry(
        session,
        kind="write_off",
        business_date=value_date,
        currency=loan.currency,
        loan_id=loan.id,
        description=f"write-off of loan {loan.id}",
        lines=[Line(Account.WRITE_OFF_EXPENSE, total, loan.id)]
        + [Line(a, -balances[a], loan.id) for a in receivables],
    )
    loan.status = "written_off"
    loan.written_off_on = value_date
    session.flush()
    return loan


def _recover_locked(
    session: Session, loan: Loan, amount: Decimal, value_date: date, reference: str
) -> Repayment:
    return _cash_event(
        session, loan, "recovery", amount, value_date, reference, Account.RECOVERY_INCOME, +1
    )


def _cash_event(
    session: Session,
    loan: Loan,
    kind: str,
    amount: Decimal,
    value_date: date,
    reference: str,
    against: Account,
    direction: int,
) -> Repayment:
    """Money in (direction +1: Dr cash, Cr `against`) or out (-1) recorded as a Repayment row
    with its one balanced entry: recoveries after write-off and credit refunds."""
    row = Repayment(
        loan_id=loan.id, kind=kind, amount=amount, value_date=value_date, reference=reference
    )
    session.add(row)
    row.entry = post_entry(
        session,
        kind=kind,
        business_date=value_date,
        currency=loan.currency,
        loan_id=loan.id,
        description=f"{kind} {reference}".strip(),
        lines=[
            Line(Account.CASH, direction * amount, loan.id),
            Line(against, -direction * amount, loan.id),
        ],
    )
    session.flush()
    return row


# ---------------------------------------------------------------- credit balance refund


def refund_credit(
    session: Session,
    *,
    loan_id: int,
    value_date: date,
    business_date: date,
    amount: Decimal | None = None,
    reference: str = "",
) -> Repayment:
    """Pay the borrower's credit balance (overpayments held in suspense) back out."""
    loan = lock_loan(session, loan_id)
    _check_value_date(loan, value_date, business_date)
    credit = -loan_balances(session, loan.id)[Account.SUSPENSE]
    amount = credit if amount is None else amount
    if credit <= 0:
        raise Conflict(f"loan {loan_id} has no credit balance to refund", field="loan_id")
    if amount > credit:
        raise ValidationFailed(
            "amount", "within-credit", f"amount exceeds the credit balance of {credit}"
        )
    return _cash_event(session, loan, "refund", amount, value_date, reference, Account.SUSPENSE, -1)
