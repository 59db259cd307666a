"""A book of loans for the daily-close tests, and a snapshot of everything a close writes."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.ledger.models import JournalEntry, JournalLine
from mobilend.loans import service as loans
from mobilend.loans.models import Installment, Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.servicing.models import DelinquencyEvent, DelinquencySnapshot, LoanDelinquency
from mobilend.servicing.policy import ServicingPolicy
from tests.integration.helpers import Db

D = Decimal
START = date(2023, 12, 20)
END = date(2024, 2, 5)


PRODUCTS = [
    ProductConfig(
        annual_rate_pct=D("18"),
        penalty_rate_pct=D("18.25"),
        late_fee=D("20"),
        late_fee_grace_days=3,
        installment_fee=D("2.50"),
        apr_cap_pct=D("36"),
    ),
    ProductConfig(annual_rate_pct=D("21.5"), penalty_rate_pct=D("36"), day_count="act/act"),
    ProductConfig(
        annual_rate_pct=D("12"),
        penalty_rate_pct=D("10"),
        day_count="30/360",
        servicing_policy=ServicingPolicy(
            bucket_upper_bounds=[0, 15, 45],
            substandard_after=20,
            doubtful_after=40,
            loss_after=60,
            provision_method="regulatory_rate",
            pd_by_bucket={"M0": D("0.01"), "M1": D("0.3"), "M2": D("0.6"), "M3+": D("0.9")},
        ),
    ),
]


def book(db: Db, rng: random.Random, count: int = 36) -> list[int]:
    """`count` loans over three products, disbursed before START, accrued to START - 2."""
    codes = []
    for config in PRODUCTS:
        code = f"C{uuid.uuid4().hex[:8]}"
        db(
            lambda s, c=code, cfg=config: loans.create_product(
                s, ProductIn(code=c, name="close test", config=cfg)
            )
        )
        codes.append(code)
    ids = []
    for n in range(count):
        start = date(2023, 10, 1) + timedelta(days=rng.randrange(0, 75))
        data = LoanIn(
            product_code=codes[n % 3],
            principal=D(rng.randrange(50_000, 900_000)) / 100,
            periods=rng.choice([2, 3, 6]),
            start_date=start,
        )
        loan = db(lambda s, x=data: loans.create_loan(s, x))
        db(lambda s, i=loan.id, v=start: loans.disburse(s, loan_id=i, value_date=v))
        db(lambda s, i=loan.id, v=start: loans.accrue(s, loan_id=i, through=START - timedelta(2)))
        ids.append(loan.id)
    return ids


def payments(ids: list[int], rng: random.Random) -> dict[date, list[tuple[int, Decimal]]]:
    plan: dict[date, list[tuple[int, Decimal]]] = {}
    for loan_id in ids:
        habit = rng.choice(["never", "partial", "big", "small", "catch_up"])
        if habit == "never":
            continue
        if habit == "catch_up":  # clears the arrears late; the rest stays as a credit balance
            plan.setdefault(END - timedelta(days=3), []).append((loan_id, D(9000)))
            continue
        for _ in range(rng.randrange(1, 4)):
            day = START + timedelta(days=rng.randrange(0, (END - START).days))
            amount = {
                "partial": D(rng.randrange(1_000, 30_000)) / 100,
                "big": D(rng.randrange(50_000, 200_000)) / 100,
                "small": D(rng.randrange(1, 500)) / 100,
            }[habit]
            plan.setdefault(day, []).append((loan_id, amount))
    return plan


def state(session: Session) -> dict[str, Any]:
    """Everything the close writes, without surrogate ids or timestamps."""
    loans_rows = sorted(
        (loan.id, loan.status, loan.accrued_through, D(loan.penalty_carry))
        for loan in session.scalars(select(Loan))
    )
    installments = sorted(
        (
            i.loan_id,
            i.number,
            i.cancelled,
            i.interest_accrued,
            i.fee_charged,
            i.penalty_charged,
            i.late_fee_charged,
            i.paid_principal,
            i.paid_interest,
            i.paid_fee,
            i.paid_penalty,
        )
        for i in session.scalars(select(Installment))
    )
    lines = Counter(
        session.execute(
            select(
                JournalEntry.loan_id,
                JournalEntry.kind,
                JournalEntry.business_date,
                JournalEntry.description,
                JournalLine.account,
                JournalLine.amount,
            ).join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        ).all()
    )
    delinquency = sorted(
        (
            r.loan_id,
            r.business_date,
            r.dpd,
            r.bucket,
            r.loan_class,
            r.class_floor,
            r.npl,
            r.oldest_due_date,
            r.overdue_principal,
            r.overdue_interest,
            r.overdue_fee,
            r.overdue_penalty,
            r.outstanding_principal,
            r.exposure,
            r.collateral_value,
            r.provision,
        )
        for r in session.scalars(select(LoanDelinquency))
    )
    events = Counter(
        (e.loan_id, e.business_date, e.dpd, e.from_bucket, e.to_bucket, e.from_class, e.to_class)
        for e in session.scalars(select(DelinquencyEvent))
    )
    snapshots = sorted(
        (
            s.business_date,
            s.loan_id,
            s.disbursed_on,
            s.dpd,
            s.bucket,
            s.loan_class,
            s.outstanding_principal,
        )
        for s in session.scalars(select(DelinquencySnapshot))
    )
    return {
        "loans": loans_rows,
        "installments": installments,
        "lines": lines,
        "delinquency": delinquency,
        "events": events,
        "snapshots": snapshots,
    }
