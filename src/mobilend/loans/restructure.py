"""Restructuring a loan: term extension and reduced installment (展期 / 降低月供).

On the restructuring date R (a business date, after interest is accrued through R):

* the installments not yet settled are replaced: every live installment due after R, and every
  one due on or before R with anything still owed. They are flagged `cancelled`, as the
  prepayment reschedule does, so the paid history stays readable;
* the outstanding principal P of the replaced installments is re-amortized by the schedule
  code from R, at the loan's rate and frequency, over n = (replaced installments) +
  `extension_months` periods (due dates R + 1 period, R + 2 periods, ...). With
  `new_installment` (annuity loans only) the level installment is that amount and the schedule
  ends when P is repaid; an offer whose last installment would exceed it does not amortize;
* arrears are not capitalised (no interest on interest): the interest accrued to R (overdue
  interest and the current period's interest so far), unpaid fees and penalty interest stay
  receivable, on one installment due on R with no principal. The borrower settles them on the
  day to be current again;
* nothing moves in the ledger: each receivable keeps its balance and the sub-ledger (live
  installments) still equals it. The loan's terms become the restructured terms (the old ones
  are returned for the record), so later prepayments re-amortize the new schedule.

An offer is checked against the restructuring limits (collections.promises) and the loan's
legal rate cap: the annualized rate by IRR of the new schedule (P out on R, the new
installments in) may not exceed the `apr_cap_pct` frozen on the loan at booking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from mobilend.collections.promises import (
    RestructuringLimits,
    RestructuringOffer,
    check_restructuring,
)
from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.core.money import ZERO
from mobilend.loans import schedule as sched
from mobilend.loans.apr import IrrDisclosure
from mobilend.loans.codec import terms_to_dict
from mobilend.loans.models import Installment, Loan
from mobilend.loans.quoting import disclose
from mobilend.loans.service import accrue_locked, get_loan, lock_loan, servicing_of, terms_of
from mobilend.loans.terms import LoanTerms, ScheduleType, UpfrontFeeTreatment


@dataclass(frozen=True)
class RestructurePlan:
    """What a restructuring on `business_date` does to the loan (computed, not yet applied)."""

    business_date: date
    outstanding_principal: Decimal
    arrears_interest: Decimal
    arrears_fee: Decimal
    arrears_penalty: Decimal
    current_installment: Decimal
    replaced: int  # installments replaced (remaining_months of the offer)
    settled: int  # installments already settled (elapsed_months)
    extension_months: int
    new_installment: Decimal | None
    terms: LoanTerms  # the restructured terms
    installments: tuple[sched.Installment, ...]
    apr: IrrDisclosure

    @property
    def arrears(self) -> Decimal:
        return self.arrears_interest + self.arrears_fee + self.arrears_penalty

    def schedule_json(self) -> list[dict[str, Any]]:
        return [
            {
                "number": i.number,
                "start_date": i.start_date.isoformat(),
                "due_date": i.due_date.isoformat(),
                "principal": str(i.principal),
                "interest": str(i.interest),
                "fee": str(i.fee),
                "total": str(i.total),
                "balance": str(i.balance),
            }
            for i in self.installments
        ]


def plan(
    loan: Loan,
    *,
    business_date: date,
    extension_months: int = 0,
    new_installment: Decimal | None = None,
    limits: RestructuringLimits = RestructuringLimits(),
    days_past_due: int = 0,
    restructurings_so_far: int = 0,
) -> RestructurePlan:
    """The restructuring of a loan accrued through `business_date` (reads the loan only)."""
    if loan.status != "active":
        raise Conflict(
            f"loan {loan.id} is {loan.status}; only active loans are restructured",
            field="loan_id",
            rule="active-loan",
        )
    live = [i for i in loan.installments if not i.cancelled]
    replaced = [i for i in live if i.due_date > business_date or _owed(i) != 0]
    principal = sum((i.principal - i.paid_principal for i in replaced), ZERO)
    if principal <= 0:
        raise Conflict(
            f"loan {loan.id} has no principal left to restructure",
            field="loan_id",
            rule="principal",
        )
    current = replaced[0].principal + replaced[0].interest
    offer = RestructuringOffer(
        current_installment=current,
        remaining_months=len(replaced),
        outstanding_principal=principal,
        extension_months=extension_months,
        new_installment=new_installment,
        elapsed_months=len(live) - len(replaced),
    )
    check_restructuring(
        offer,
        limits=limits,
        days_past_due=days_past_due,
        restructurings_so_far=restructurings_so_far,
    )
    terms = _new_terms(terms_of(loan), principal, len(replaced) + extension_months, business_date)
    installments = _new_schedule(terms, offer.new_installment)
    apr = disclose(_as_schedule(terms, installments))
    cap = Decimal(str(servicing_of(loan)["apr_cap_pct"]))
    if apr.compound_pct > cap:
        raise ValidationFailed(
            "extension_months" if offer.new_installment is None else "new_installment",
            "apr-cap",
            f"the new schedule's annualized rate by IRR {apr.compound_pct}% exceeds the loan's "
            f"cap of {cap}%",
        )
    return RestructurePlan(
        business_date=business_date,
        outstanding_principal=principal,
        arrears_interest=sum((i.interest_accrued - i.paid_interest for i in replaced), ZERO),
        arrears_fee=sum((i.fee_charged - i.paid_fee for i in replaced), ZERO),
        arrears_penalty=sum((i.penalty_charged - i.paid_penalty for i in replaced), ZERO),
        current_installment=current,
        replaced=len(replaced),
        settled=len(live) - len(replaced),
        extension_months=extension_months,
        new_installment=offer.new_installment,
        terms=terms,
        installments=tuple(installments),
        apr=apr,
    )


def preview(
    session: Session, *, loan_id: int, business_date: date, **offer: Any
) -> RestructurePlan:
    """The plan as of `business_date`, with nothing kept (the accrual is rolled back).

    `offer`: the keyword arguments of `plan` (extension_months, new_installment, limits,
    days_past_due, restructurings_so_far)."""
    loan = get_loan(session, loan_id)
    _check_date(loan, business_date)
    savepoint = session.begin_nested()
    try:
        accrue_locked(session, loan, business_date)
        return plan(loan, business_date=business_date, **offer)
    finally:
        savepoint.rollback()


def restructure(
    session: Session, *, loan_id: int, business_date: date, **offer: Any
) -> tuple[RestructurePlan, dict[str, Any]]:
    """Apply a restructuring on `business_date`; returns the plan and the loan's old terms.

    `offer`: the keyword arguments of `plan`. Posts no journal entry (no balance moves)."""
    loan = lock_loan(session, loan_id)
    _check_date(loan, business_date)
    accrue_locked(session, loan, business_date)
    result = plan(loan, business_date=business_date, **offer)
    previous = dict(loan.terms)
    replaced = [
        i for i in loan.installments if not i.cancelled and (i.due_date > business_date or _owed(i))
    ]
    for inst in replaced:
        inst.cancelled = True
    number = max(i.number for i in loan.installments) + 1
    if result.arrears:
        loan.installments.append(_arrears_row(result, number, min(i.start_date for i in replaced)))
        number += 1
    for offset, new in enumerate(result.installments):
        loan.installments.append(_row(new, number + offset))
    loan.terms = {**terms_to_dict(result.terms), "servicing": previous["servicing"]}
    session.flush()
    return result, previous


def _check_date(loan: Loan, business_date: date) -> None:
    if loan.accrued_through is not None and business_date < loan.accrued_through:
        raise ValidationFailed(
            "business_date",
            "not-before-accrual",
            f"{business_date} is before the loan's accrual date {loan.accrued_through}",
        )


def _owed(i: Installment) -> Decimal:
    return (
        (i.principal - i.paid_principal)
        + (i.interest_accrued - i.paid_interest)
        + (i.fee_charged - i.paid_fee)
        + (i.penalty_charged - i.paid_penalty)
    )


def _new_terms(old: LoanTerms, principal: Decimal, periods: int, start: date) -> LoanTerms:
    """The loan's rate, frequency, rounding and installment fee on the restructured principal."""
    return replace(
        old,
        principal=principal,
        periods=periods,
        start=start,
        first_due_date=None,
        principal_grace_periods=0,
        interest_free_periods=0,
        upfront_fee=ZERO,
        upfront_fee_treatment=UpfrontFeeTreatment.DEDUCTED,
    )


def _new_schedule(terms: LoanTerms, level: Decimal | None) -> list[sched.Installment]:
    if level is None:
        return list(sched.build_schedule(terms).installments)
    if terms.schedule is not ScheduleType.ANNUITY:
        raise ValidationFailed(
            "new_installment",
            "annuity-only",
            f"a reduced installment applies to annuity loans, not {terms.schedule.value}",
        )
    rows = sched.reschedule_after_prepayment(
        terms,
        remaining_principal=terms.principal,
        from_date=terms.start,
        remaining_due_dates=sched.due_dates(terms),
        mode="reduce_term",
        current_installment=level,
    )
    last = rows[-1].principal + rows[-1].interest
    if last > level:
        raise ValidationFailed(
            "new_installment",
            "amortizes",
            f"{level} a period over {terms.periods} periods leaves a last installment of {last}",
        )
    return rows


def _as_schedule(terms: LoanTerms, rows: list[sched.Installment]) -> sched.Schedule:
    return sched.Schedule(
        terms=terms,
        installments=tuple(rows),
        financed_principal=terms.principal,
        disbursed_amount=terms.principal,
        upfront_fee=ZERO,
        total_interest=sum((i.interest for i in rows), ZERO),
        total_fees=sum((i.fee for i in rows), ZERO),
        total_payment=sum((i.total for i in rows), ZERO),
    )


def _arrears_row(result: RestructurePlan, number: int, start: date) -> Installment:
    """Interest, fees and penalty owed on R: fully recognised, no principal, due on R."""
    row = _row(None, number)
    row.start_date, row.due_date = start, result.business_date
    row.interest = row.interest_accrued = result.arrears_interest
    row.fee_charged = result.arrears_fee
    row.penalty_charged = result.arrears_penalty
    row.late_fee_charged = True  # a late fee was charged (or not) on the replaced installments
    return row


def _row(new: sched.Installment | None, number: int) -> Installment:
    return Installment(
        number=number,
        start_date=new.start_date if new else date.min,
        due_date=new.due_date if new else date.min,
        principal=new.principal if new else ZERO,
        interest=new.interest if new else ZERO,
        fee=new.fee if new else ZERO,
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
