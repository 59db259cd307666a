"""Each loan's delinquency, five-tier class and provision after a close: the Decimal path.

`refresh_delinquency` recomputes `loan_delinquency` for the active loans of an id range from
their installments with the pure modules (delinquency, classification, provisioning), one loan
at a time. It is the reference the set-based close (close_sql) is tested against, and the path
the close takes on SQLite. A loan that is no longer active loses its row. A change of bucket or
tier is recorded in `delinquency_events`; at a month-end close every open loan's state is kept
in `delinquency_snapshots` (the input of roll rates and vintages).

Figures (all Decimal, to the cent):
- overdue_*: what is unpaid on installments that fell due before the business date;
- outstanding_principal: principal not yet repaid on live installments;
- exposure (EAD): outstanding principal plus every charged and unpaid interest, fee and
  penalty - the loan's receivable balances in the ledger;
- collateral_value: the smaller of the live pledge's lending value at booking and its latest
  marked value, None without a pledge;
- provision: `provisioning.provision_for` with the product's ServicingPolicy.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mobilend.collateral.models import Pledge
from mobilend.core.money import ZERO
from mobilend.loans.models import Installment, Loan, Product
from mobilend.loans.schemas import ProductConfig
from mobilend.servicing.classification import LoanClass, classify
from mobilend.servicing.delinquency import InstallmentDue, delinquency
from mobilend.servicing.models import DelinquencyEvent, DelinquencySnapshot, LoanDelinquency
from mobilend.servicing.policy import ServicingPolicy
from mobilend.servicing.provisioning import provision_for

BATCH = 500


def is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def policies(session: Session) -> dict[int, ServicingPolicy]:
    """Every product's servicing policy, by product id."""
    return {
        product.id: ProductConfig.model_validate(product.config).servicing_policy
        for product in session.scalars(select(Product))
    }


def refresh_delinquency(
    session: Session, *, business_date: date, lo: int = 0, hi: int | None = None
) -> int:
    """Recompute loan_delinquency for active loans with lo <= id < hi. Returns loans refreshed."""
    by_product = policies(session)
    in_range = [Loan.id >= lo] + ([Loan.id < hi] if hi is not None else [])
    gone = select(Loan.id).where(*in_range, Loan.status != "active")
    session.execute(
        delete(LoanDelinquency)
        .where(LoanDelinquency.loan_id.in_(gone))
        .execution_options(synchronize_session=False)
    )
    done = 0
    last = lo - 1
    while True:
        loans = list(
            session.scalars(
                select(Loan)
                .where(*in_range, Loan.id > last, Loan.status == "active")
                .order_by(Loan.id)
                .limit(BATCH)
            )
        )
        if not loans:
            break
        ids = [loan.id for loan in loans]
        values = _collateral_values(session, ids)
        current = select(LoanDelinquency).where(LoanDelinquency.loan_id.in_(ids))
        rows = {row.loan_id: row for row in session.scalars(current)}
        for loan in loans:
            row = rows.get(loan.id)
            if row is None:
                row = LoanDelinquency(loan_id=loan.id, class_floor=None)
                session.add(row)
            _refresh_one(
                session, loan, row, by_product[loan.product_id], business_date, values.get(loan.id)
            )
        session.flush()
        done += len(loans)
        last = ids[-1]
    if is_month_end(business_date):
        snapshot(session, business_date=business_date, lo=lo, hi=hi)
    return done


def _collateral_values(session: Session, loan_ids: list[int]) -> dict[int, Decimal]:
    rows = session.execute(
        select(Pledge.loan_id, func.min(Pledge.lending_value), func.min(Pledge.current_value))
        .where(Pledge.loan_id.in_(loan_ids), Pledge.status == "active")
        .group_by(Pledge.loan_id)
    )
    return {loan_id: min(lending, current) for loan_id, lending, current in rows}


def dues_of(installments: Iterable[Installment]) -> list[InstallmentDue]:
    """The pure module's view of installments (charged so far, paid so far)."""
    return [
        InstallmentDue(
            number=i.number,
            due_date=i.due_date,
            principal_due=i.principal,
            interest_due=i.interest_accrued,
            fee_due=i.fee_charged,
            penalty_due=i.penalty_charged,
            principal_paid=i.paid_principal,
            interest_paid=i.paid_interest,
            fee_paid=i.paid_fee,
            penalty_paid=i.paid_penalty,
        )
        for i in installments
    ]


def _refresh_one(
    session: Session,
    loan: Loan,
    row: LoanDelinquency,
    policy: ServicingPolicy,
    business_date: date,
    collateral_value: Decimal | None,
) -> None:
    live = [i for i in loan.installments if not i.cancelled]
    arrears = delinquency(dues_of(live), business_date)
    scheme = policy.buckets()
    bucket = scheme.bucket_for(arrears.days_past_due).name
    floor = LoanClass(row.class_floor) if row.class_floor else None
    loan_class = classify(arrears.days_past_due, policy.thresholds(), floor=floor).loan_class
    outstanding = sum((i.principal - i.paid_principal for i in live), ZERO)
    charged = (
        i.interest_accrued
        - i.paid_interest
        + i.fee_charged
        - i.paid_fee
        + i.penalty_charged
        - i.paid_penalty
        for i in live
    )
    exposure = outstanding + sum(charged, ZERO)
    provision = provision_for(
        exposure=exposure,
        loan_class=loan_class,
        settings=policy.provision_settings(),
        bucket=bucket,
        collateral_value=collateral_value,
    ).amount
    previous = (row.bucket, row.loan_class) if row.business_date is not None else None
    changed = previous != (bucket, loan_class.value) if previous else bucket != scheme.names[0]
    if changed:
        session.add(
            DelinquencyEvent(
                loan_id=loan.id,
                business_date=business_date,
                dpd=arrears.days_past_due,
                from_bucket=previous[0] if previous else None,
                to_bucket=bucket,
                from_class=previous[1] if previous else None,
                to_class=loan_class.value,
            )
        )
    row.business_date = business_date
    row.dpd = arrears.days_past_due
    row.bucket = bucket
    row.loan_class = loan_class.value
    row.npl = loan_class.is_npl
    row.oldest_due_date = arrears.oldest_overdue_due_date
    row.overdue_principal = arrears.overdue.principal
    row.overdue_interest = arrears.overdue.interest
    row.overdue_fee = arrears.overdue.fee
    row.overdue_penalty = arrears.overdue.penalty
    row.outstanding_principal = outstanding
    row.exposure = exposure
    row.collateral_value = collateral_value
    row.provision = provision


def snapshot(session: Session, *, business_date: date, lo: int = 0, hi: int | None = None) -> int:
    """Keep each open loan's state of this close (lo <= id < hi) in delinquency_snapshots."""
    in_range = [LoanDelinquency.loan_id >= lo] + (
        [LoanDelinquency.loan_id < hi] if hi is not None else []
    )
    session.execute(
        delete(DelinquencySnapshot).where(
            DelinquencySnapshot.business_date == business_date,
            DelinquencySnapshot.loan_id >= lo,
            *([DelinquencySnapshot.loan_id < hi] if hi is not None else []),
        )
    )
    rows = session.execute(
        select(
            LoanDelinquency.loan_id,
            Loan.disbursed_on,
            LoanDelinquency.dpd,
            LoanDelinquency.bucket,
            LoanDelinquency.loan_class,
            LoanDelinquency.outstanding_principal,
        )
        .join(Loan, Loan.id == LoanDelinquency.loan_id)
        .where(*in_range, LoanDelinquency.business_date == business_date)
    ).all()
    session.add_all(
        DelinquencySnapshot(
            business_date=business_date,
            loan_id=loan_id,
            disbursed_on=disbursed_on,
            dpd=dpd,
            bucket=bucket,
            loan_class=loan_class,
            outstanding_principal=principal,
        )
        for loan_id, disbursed_on, dpd, bucket, loan_class, principal in rows
    )
    session.flush()
    return len(rows)
