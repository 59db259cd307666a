"""Concurrent repayments on one loan against PostgreSQL: each applied exactly once."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.ledger.accounts import Account
from mobilend.loans import service
from mobilend.loans.models import Repayment
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.settings import Settings
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
pytestmark = [pytest.mark.integration, pytest.mark.pg]


def _loan(db: Db) -> int:
    code = f"C{uuid.uuid4().hex[:10]}"
    db(lambda s: service.create_product(s, ProductIn(code=code, name="c", config=ProductConfig())))
    loan = db(
        lambda s: service.create_loan(
            s,
            LoanIn(
                product_code=code, principal=D("10000"), periods=12, start_date=date(2025, 1, 1)
            ),
        )
    )
    db(lambda s: service.disburse(s, loan_id=loan.id, value_date=date(2025, 1, 1)))
    return loan.id


def test_threads_repaying_one_loan(pg_server: str) -> None:
    db = Db(pg_server)
    loan_id = _loan(db)
    threads, errors = 8, []
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            db(
                lambda s: service.repay(
                    s,
                    loan_id=loan_id,
                    amount=D("100.00"),
                    value_date=date(2025, 2, 1),
                    business_date=date(2025, 2, 1),
                    reference=f"t{i}",
                )
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    # 8 x 100.00 received; interest of installment 1 is 100.00 (10000 x 1%), paid once;
    # the rest goes to its principal (888.49 due): 700.00 of principal.
    assert bal[Account.CASH] == D("-10000.00") + D("800.00")
    assert bal[Account.INTEREST_RECEIVABLE] == D("0.00")
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("10000.00") - D("700.00")
    n = db(lambda s: s.query(Repayment).filter(Repayment.loan_id == loan_id).count())
    assert n == threads


def test_same_idempotency_key_from_two_threads_moves_money_once(pg_server: str) -> None:
    db = Db(pg_server)
    loan_id = _loan(db)
    clock = FixedClock(datetime(2025, 2, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    app = create_app(Settings(database_url=pg_server), clock=clock)
    _, token = db(lambda s: create_credential(s, name="t", role="officer"))
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    barrier = threading.Barrier(4)
    results: list[int] = []
    with TestClient(app) as client:

        def worker() -> None:
            barrier.wait()
            r = client.post(
                f"/v1/loans/{loan_id}/repayments", json={"amount": "50.00"}, headers=headers
            )
            results.append(r.status_code)

        pool = [threading.Thread(target=worker) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    app.state.engine.dispose()
    assert results == [201] * 4
    n = db(lambda s: s.query(Repayment).filter(Repayment.loan_id == loan_id).count())
    assert n == 1
    assert db(lambda s: check_loan_consistent(s, loan_id))[Account.CASH] == D("-9950.00")
