"""Hypothesis: random servicing histories never break the ledger or drift from the schedule."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilend.core.errors import MobilendError
from mobilend.db.migrate import upgrade
from mobilend.ledger.accounts import Account
from mobilend.loans import service
from mobilend.loans.models import Repayment
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from tests.integration.helpers import Db, check_loan_consistent

pytestmark = pytest.mark.integration
D = Decimal

ops = st.lists(
    st.tuples(
        st.sampled_from(["repay", "repay", "prepay", "accrue", "reverse"]),
        st.integers(min_value=1, max_value=45),  # days forward
        st.integers(min_value=1, max_value=90000),  # amount in cents
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Db:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}"
    upgrade(url)
    return Db(url)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=ops,
    schedule=st.sampled_from(["annuity", "equal_principal", "interest_only", "flat"]),
    strategy=st.sampled_from(["horizontal", "vertical"]),
)
def test_random_histories_keep_the_books(
    sqlite_db: Db, history: list, schedule: str, strategy: str
) -> None:
    db = sqlite_db
    code = f"H{uuid.uuid4().hex[:10]}"
    config = ProductConfig(
        schedule=schedule,  # type: ignore[arg-type]
        penalty_rate_pct=D("18"),
        late_fee=D("15"),
        installment_fee=D("2.50"),
        allocation_strategy=strategy,  # type: ignore[arg-type]
        apr_cap_pct=D("36"),
    )
    db(lambda s: service.create_product(s, ProductIn(code=code, name="h", config=config)))
    start = date(2025, 1, 31)
    loan = db(
        lambda s: service.create_loan(
            s, LoanIn(product_code=code, principal=D("3000"), periods=6, start_date=start)
        )
    )
    db(lambda s: service.disburse(s, loan_id=loan.id, value_date=start))
    today = start
    for op, days, cents in history:
        today += timedelta(days=days)
        amount = D(cents) / 100
        try:
            if op == "repay":
                db(
                    lambda s: service.repay(
                        s, loan_id=loan.id, amount=amount, value_date=today, business_date=today
                    )
                )
            elif op == "prepay":
                db(
                    lambda s: service.prepay(
                        s, loan_id=loan.id, amount=amount, value_date=today, business_date=today
                    )
                )
            elif op == "accrue":
                db(lambda s: service.accrue(s, loan_id=loan.id, through=today))
            else:
                last = db(
                    lambda s: (
                        s.query(Repayment)
                        .filter(Repayment.loan_id == loan.id, Repayment.status == "posted")
                        .order_by(Repayment.id.desc())
                        .first()
                    )
                )
                if last is not None:
                    db(
                        lambda s: service.reverse_repayment(
                            s, repayment_id=last.id, business_date=today
                        )
                    )
        except MobilendError:
            pass  # refused input must leave nothing behind; checked below
        bal = db(lambda s: check_loan_consistent(s, loan.id))
        posted = db(
            lambda s: sum(
                (
                    r.amount
                    for r in s.query(Repayment).filter(
                        Repayment.loan_id == loan.id, Repayment.status == "posted"
                    )
                ),
                D(0),
            )
        )
        # Cash: out the disbursement, in exactly the repayments that stand.
        assert bal[Account.CASH] == D("-3000.00") + posted
        # Income recognised = what was received beyond principal, less credit held, plus
        # income still receivable.
        income = -(
            bal[Account.INTEREST_INCOME] + bal[Account.FEE_INCOME] + bal[Account.PENALTY_INCOME]
        )
        principal_paid = D("3000.00") - bal[Account.PRINCIPAL_RECEIVABLE]
        receivable_income = (
            bal[Account.INTEREST_RECEIVABLE]
            + bal[Account.FEE_RECEIVABLE]
            + bal[Account.PENALTY_RECEIVABLE]
        )
        assert posted == principal_paid + income - receivable_income - bal[Account.SUSPENSE]
        assert bal[Account.PRINCIPAL_RECEIVABLE] >= 0
