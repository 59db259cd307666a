"""Rules of the close beyond the happy path: steps in order; a period cut on its first day."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from mobilend.core.errors import Conflict
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.servicing import close
from tests.integration.close_book import START, book, state
from tests.integration.helpers import Db, check_loan_consistent

pytestmark = pytest.mark.integration
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_book_steps_run_in_order(isolated_db_url: str, tmp_path: Path) -> None:
    db = Db(isolated_db_url)
    book(db, random.Random(8), count=3)
    db(
        lambda s: close.plan(
            s,
            business_date=START,
            today=START,
            now=NOW,
            requested_by="t",
            engine=close.IN_PROCESS,
            partition_size=10,
        )
    )
    db(lambda s: close.run_loans_part(s, business_date=START, part=0, now=NOW, worker="w"))

    def step(name: str) -> object:
        return db(
            lambda s: close.run_book_step(
                s,
                db.factory,
                business_date=START,
                step=name,
                now=NOW,
                worker="w",
                data_dir=tmp_path,
            )
        )

    with pytest.raises(Conflict) as refused:
        step("devices")  # collateral has not run
    assert (refused.value.field, refused.value.rule) == ("step", "steps-in-order")
    for name in close.BOOK_STEPS:
        assert step(name) is not None
    assert step("log") is None  # done already: nothing happens
    assert (db(lambda s: close.close_status(s, START)) or {})["status"] == "done"


def test_prepayment_on_a_due_date_then_closes_agree(
    twin_pg: tuple[str, str], tmp_path: Path
) -> None:
    """A partial prepayment on a due date cuts the current period to zero days; both paths
    close the loan's next days the same way (this once stopped the Decimal path)."""
    start = date(2023, 9, 1)
    states = []
    for url, method in zip(twin_pg, ("decimal", "sql"), strict=True):
        db = Db(url)
        code = f"Z{uuid.uuid4().hex[:8]}"
        config = ProductConfig(annual_rate_pct=Decimal("12"), penalty_rate_pct=Decimal("18"))
        db(lambda s: loans.create_product(s, ProductIn(code=code, name="z", config=config)))
        body = LoanIn(product_code=code, principal=Decimal("12000"), periods=12, start_date=start)
        loan_id = db(lambda s: loans.create_loan(s, body)).id
        db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=start))
        for month in (10, 11, 12):
            day = date(2023, month, 1)
            db(
                lambda s, d=day: loans.repay(
                    s, loan_id=loan_id, amount=Decimal("1066.19"), value_date=d, business_date=d
                )
            )
        due = date(2023, 12, 1)
        db(
            lambda s: loans.prepay(
                s, loan_id=loan_id, value_date=due, business_date=due, amount=Decimal("6000")
            )
        )
        for offset in range(3):
            day = due + timedelta(days=offset)
            result = close.run_in_process(
                db.factory,
                business_date=day,
                today=day,
                clock=lambda: NOW,
                requested_by="t",
                data_dir=tmp_path,
                method=method,
            )
            assert result["status"] == "done"
        db(lambda s: check_loan_consistent(s, loan_id))
        states.append(db(state))
    assert states[0] == states[1]


def test_write_off_rechecked_under_the_loan_lock(isolated_db_url: str, tmp_path: Path) -> None:
    """The close of D runs after midnight: a borrower who pays the arrears on D + 1, between
    the loan step and collections, is not written off on the loan step's stale DPD."""
    db = Db(isolated_db_url)
    code = f"W{uuid.uuid4().hex[:8]}"
    policy = {"write_off_after_dpd": 30}
    config = ProductConfig.model_validate({"annual_rate_pct": "12", "servicing_policy": policy})
    db(lambda s: loans.create_product(s, ProductIn(code=code, name="w", config=config)))
    ids = []
    for _ in range(2):
        body = LoanIn(
            product_code=code, principal=Decimal("3000"), periods=3, start_date=date(2023, 9, 1)
        )
        loan_id = db(lambda s: loans.create_loan(s, body)).id
        db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=date(2023, 9, 1)))
        ids.append(loan_id)
    day = date(2023, 11, 15)  # 45 days past the first due date, 2023-10-01
    db(
        lambda s: close.plan(
            s,
            business_date=day,
            today=day,
            now=NOW,
            requested_by="t",
            engine=close.IN_PROCESS,
            partition_size=100,
        )
    )
    db(lambda s: close.run_loans_part(s, business_date=day, part=0, now=NOW, worker="w"))
    # the next morning the first borrower pays everything owed so far
    nxt = day + timedelta(days=1)
    db(
        lambda s: loans.repay(
            s, loan_id=ids[0], amount=Decimal("2500"), value_date=nxt, business_date=nxt
        )
    )
    for name in close.BOOK_STEPS:
        db(
            lambda s, n=name: close.run_book_step(
                s, db.factory, business_date=day, step=n, now=NOW, worker="w", data_dir=tmp_path
            )
        )
    statuses = db(lambda s: [loans.get_loan(s, i).status for i in ids])
    assert statuses == ["active", "written_off"]
