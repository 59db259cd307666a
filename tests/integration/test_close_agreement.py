"""The close's set-based SQL agrees exactly with the per-loan Decimal path, day after day.

Two PostgreSQL databases get the same book: three products (act/365 with a late fee and an
installment fee, act/act across the 2028 leap year, 30/360 with its own buckets, tiers and the
regulatory provision method), 36 loans disbursed on different days, some repaid on time, some
partly, some never, one restructured-class floor. Every business date from 2027-12-20 to
2028-02-05 is closed on both - one with method "decimal" (loans.service.accrue_locked and
servicing.status, one loan at a time), the other with method "sql" (close_sql) - with the same
repayments posted before the same closes. After every close the two books must be identical:
loans, installments, every journal line, loan_delinquency, events and month-end snapshots.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobilend.ledger.models import JournalEntry, JournalLine
from mobilend.loans import service as loans
from mobilend.loans.models import Installment, Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.servicing import close
from mobilend.servicing.models import DelinquencyEvent, DelinquencySnapshot, LoanDelinquency
from mobilend.servicing.policy import ServicingPolicy
from tests.conftest import _pg_copy
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
pytestmark = pytest.mark.integration
START = date(2027, 12, 20)
END = date(2028, 2, 5)


@pytest.fixture
def twin_pg(pg_template: str) -> Iterator[tuple[str, str]]:
    first, second = _pg_copy(pg_template), _pg_copy(pg_template)
    try:
        yield next(first), next(second)
    finally:
        for gen in (first, second):
            gen.close()


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


def _book(db: Db, rng: random.Random) -> list[int]:
    codes = []
    for config in PRODUCTS:
        code = f"C{uuid.uuid4().hex[:8]}"
        db(lambda s, c=code, cfg=config: loans.create_product(
            s, ProductIn(code=c, name="close test", config=cfg)))  # fmt: skip
        codes.append(code)
    ids = []
    for n in range(36):
        start = date(2027, 10, 1) + timedelta(days=rng.randrange(0, 75))
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


def _payments(ids: list[int], rng: random.Random) -> dict[date, list[tuple[int, Decimal]]]:
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
            amount = {"partial": D(rng.randrange(1_000, 30_000)) / 100,
                      "big": D(rng.randrange(50_000, 200_000)) / 100,
                      "small": D(rng.randrange(1, 500)) / 100}[habit]  # fmt: skip
            plan.setdefault(day, []).append((loan_id, amount))
    return plan


def _state(session: Session) -> dict[str, Any]:
    """Everything the close writes, without surrogate ids or timestamps."""
    loans_rows = sorted(
        (loan.id, loan.status, loan.accrued_through, D(loan.penalty_carry))
        for loan in session.scalars(select(Loan))
    )
    installments = sorted(
        (i.loan_id, i.number, i.cancelled, i.interest_accrued, i.fee_charged, i.penalty_charged,
         i.late_fee_charged, i.paid_principal, i.paid_interest, i.paid_fee, i.paid_penalty)
        for i in session.scalars(select(Installment))
    )  # fmt: skip
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
        (r.loan_id, r.business_date, r.dpd, r.bucket, r.loan_class, r.class_floor, r.npl,
         r.oldest_due_date, r.overdue_principal, r.overdue_interest, r.overdue_fee,
         r.overdue_penalty, r.outstanding_principal, r.exposure, r.collateral_value, r.provision)
        for r in session.scalars(select(LoanDelinquency))
    )  # fmt: skip
    events = Counter(
        (e.loan_id, e.business_date, e.dpd, e.from_bucket, e.to_bucket, e.from_class, e.to_class)
        for e in session.scalars(select(DelinquencyEvent))
    )
    snapshots = sorted(
        (s.business_date, s.loan_id, s.disbursed_on, s.dpd, s.bucket, s.loan_class,
         s.outstanding_principal)
        for s in session.scalars(select(DelinquencySnapshot))
    )  # fmt: skip
    return {
        "loans": loans_rows,
        "installments": installments,
        "lines": lines,
        "delinquency": delinquency,
        "events": events,
        "snapshots": snapshots,
    }


def test_set_based_close_equals_decimal_path(twin_pg: tuple[str, str], tmp_path: Path) -> None:
    dbs = {"decimal": Db(twin_pg[0]), "sql": Db(twin_pg[1])}
    booked = [_book(db, random.Random(7)) for db in dbs.values()]
    assert booked[0] == booked[1]
    ids = booked[0]
    payments = _payments(ids, random.Random(11))
    floored = ids[4]
    day = START
    while day <= END:
        for method, db in dbs.items():
            for loan_id, amount in payments.get(day, []):
                db(lambda s, i=loan_id, a=amount: loans.repay(
                    s, loan_id=i, amount=a, value_date=day, business_date=day))  # fmt: skip
            if day == START + timedelta(days=3):  # a manual floor, as a restructuring sets
                floor = (
                    update(LoanDelinquency)
                    .where(LoanDelinquency.loan_id == floored)
                    .values(class_floor="special_mention")
                )
                db(lambda s, q=floor: s.execute(q))
            close.run_in_process(
                db.factory,
                business_date=day,
                today=END,
                clock=lambda: datetime(2028, 3, 1, tzinfo=UTC),
                requested_by="test",
                data_dir=tmp_path,
                partition_size=7,
                method=method,
            )
        decimal_state, sql_state = (db(_state) for db in dbs.values())
        for key, expected in decimal_state.items():
            assert sql_state[key] == expected, (day, key)
        day += timedelta(days=1)
    final = dbs["sql"](_state)
    # the book exercised what it should: arrears in every bucket, NPLs, snapshots, floors
    buckets = {row[3] for row in final["delinquency"]}
    assert {"M0", "M1", "M2", "M3+"} <= buckets
    assert any(row[6] for row in final["delinquency"])  # some NPL
    assert {s[0] for s in final["snapshots"]} == {date(2027, 12, 31), date(2028, 1, 31)}
    assert any(row[5] == "special_mention" for row in final["delinquency"])
    assert sum(1 for k in final["lines"] if k[1] == "accrual") > 36 * 10
    assert any(k[1] == "accrual" and k[4] == "penalty_income" for k in final["lines"])
    assert any(k[1] == "accrual" and k[4] == "fee_income" for k in final["lines"])
    assert any(carry % D("0.01") != 0 for *_, carry in final["loans"])  # sub-cent carries
    for db in dbs.values():
        for loan_id in ids:
            db(lambda s, i=loan_id: check_loan_consistent(s, i))
