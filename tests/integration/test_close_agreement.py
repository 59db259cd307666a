"""The close's set-based SQL agrees exactly with the per-loan Decimal path, day after day.

Two PostgreSQL databases get the same book: three products (act/365 with a late fee and an
installment fee, act/act across the 2024 leap year, 30/360 with its own buckets, tiers and the
regulatory provision method), 36 loans disbursed on different days, some repaid on time, some
partly, some never, one restructured-class floor. Every business date from 2023-12-20 to
2024-02-05 is closed on both - one with method "decimal" (loans.service.accrue_locked and
servicing.status, one loan at a time), the other with method "sql" (close_sql) - with the same
repayments posted before the same closes. After every close the two books must be identical:
loans, installments, every journal line, loan_delinquency, events and month-end snapshots.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from mobilend.loans import service as loans
from mobilend.servicing import close
from mobilend.servicing.models import LoanDelinquency
from tests.integration.close_book import END, START, book, payments, state
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
pytestmark = pytest.mark.integration


def test_set_based_close_equals_decimal_path(twin_pg: tuple[str, str], tmp_path: Path) -> None:
    dbs = {"decimal": Db(twin_pg[0]), "sql": Db(twin_pg[1])}
    booked = [book(db, random.Random(7)) for db in dbs.values()]
    assert booked[0] == booked[1]
    ids = booked[0]
    plan = payments(ids, random.Random(11))
    floored = ids[4]
    day = START
    while day <= END:
        for method, db in dbs.items():
            for loan_id, amount in plan.get(day, []):
                db(
                    lambda s, i=loan_id, a=amount: loans.repay(
                        s, loan_id=i, amount=a, value_date=day, business_date=day
                    )
                )
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
                clock=lambda: datetime(2024, 3, 1, tzinfo=UTC),
                requested_by="test",
                data_dir=tmp_path,
                partition_size=7,
                method=method,
            )
        decimal_state, sql_state = (db(state) for db in dbs.values())
        for key, expected in decimal_state.items():
            assert sql_state[key] == expected, (day, key)
        day += timedelta(days=1)
    final = dbs["sql"](state)
    # the book exercised what it should: arrears in every bucket, NPLs, snapshots, floors
    buckets = {row[3] for row in final["delinquency"]}
    assert {"M0", "M1", "M2", "M3+"} <= buckets
    assert any(row[6] for row in final["delinquency"])  # some NPL
    assert {s[0] for s in final["snapshots"]} == {date(2023, 12, 31), date(2024, 1, 31)}
    assert any(row[5] == "special_mention" for row in final["delinquency"])
    assert sum(1 for k in final["lines"] if k[1] == "accrual") > 36 * 10
    assert any(k[1] == "accrual" and k[4] == "penalty_income" for k in final["lines"])
    assert any(k[1] == "accrual" and k[4] == "fee_income" for k in final["lines"])
    assert any(carry % D("0.01") != 0 for *_, carry in final["loans"])  # sub-cent carries
    for db in dbs.values():
        for loan_id in ids:
            db(lambda s, i=loan_id: check_loan_consistent(s, i))
