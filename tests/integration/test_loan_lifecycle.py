"""A loan's whole life against SQLite and PostgreSQL, with figures worked out by hand below."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.ledger.accounts import Account
from mobilend.loans import service
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
pytestmark = pytest.mark.integration


def _product(db: Db, **config: object) -> str:
    code = f"P{uuid.uuid4().hex[:10]}"
    cfg = ProductConfig(**config)  # type: ignore[arg-type]
    db(lambda s: service.create_product(s, ProductIn(code=code, name="Phone loan", config=cfg)))
    return code


def _book(db: Db, code: str, principal: str, periods: int, start: date) -> int:
    loan = db(
        lambda s: service.create_loan(
            s, LoanIn(product_code=code, principal=D(principal), periods=periods, start_date=start)
        )
    )
    return loan.id


def test_full_life_with_exact_figures(db_url: str) -> None:
    """1200 at 12% a year, 3 monthly installments from 2025-01-15, penalty 18%, late fee 20.

    Hand calculation (monthly rate 1%):
      level installment = 1200 * 0.01 / (1 - 1.01**-3) = 408.0265 -> 408.03
      #1 2025-02-15: interest 12.00, principal 396.03, balance 803.97
      #2 2025-03-15: interest 803.97 * 1% = 8.0397 -> 8.04, principal 399.99, balance 403.98
      #3 2025-04-15: interest 403.98 * 1% = 4.0398 -> 4.04, principal 403.98 (total 408.02)
    """
    db = Db(db_url)
    code = _product(db, penalty_rate_pct=D("18"), late_fee=D("20"), late_fee_grace_days=3)
    loan_id = _book(db, code, "1200", 3, date(2025, 1, 15))

    st = db(lambda s: service.get_loan(s, loan_id))
    assert [(i.principal, i.interest) for i in st.installments] == [
        (D("396.03"), D("12.00")),
        (D("399.99"), D("8.04")),
        (D("403.98"), D("4.04")),
    ]
    db(lambda s: service.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 15)))

    # 10 of the 31 days of period 1: 12.00 * 10 / 31 = 3.870967... -> 3.87 recognised
    db(lambda s: service.accrue(s, loan_id=loan_id, through=date(2025, 1, 25)))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.INTEREST_RECEIVABLE] == D("3.87")
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("1200.00")
    assert bal[Account.CASH] == D("-1200.00")

    # Installment 1 paid on its due date: interest fully accrued (12.00), principal 396.03.
    db(
        lambda s: service.repay(
            s,
            loan_id=loan_id,
            amount=D("408.03"),
            value_date=date(2025, 2, 15),
            business_date=date(2025, 2, 15),
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("803.97")
    assert bal[Account.INTEREST_RECEIVABLE] == D("0.00")
    assert bal[Account.INTEREST_INCOME] == D("-12.00")

    # Installment 2 missed. Through 2025-03-25:
    #  penalty on 399.99 for 16..25 March (10 days): 399.99 * 0.18 / 365 = 0.197255... a day,
    #  10 days = 1.972556 -> 1.97 posted (0.002556 carried);
    #  late fee 20 (more than 3 days late);
    #  interest: #2 full 8.04, #3 10 of 31 days: 4.04 * 10 / 31 = 1.3032 -> 1.30; total 9.34.
    db(lambda s: service.accrue(s, loan_id=loan_id, through=date(2025, 3, 25)))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PENALTY_RECEIVABLE] == D("1.97")
    assert bal[Account.FEE_RECEIVABLE] == D("20.00")
    assert bal[Account.INTEREST_RECEIVABLE] == D("9.34")

    # 420.00 by the waterfall penalty -> fee -> interest -> principal over due installments:
    # 1.97 + 20.00 + 8.04 = 30.01, leaving 389.99 for #2's principal (10.00 still owed).
    first = db(
        lambda s: service.repay(
            s,
            loan_id=loan_id,
            amount=D("420.00"),
            value_date=date(2025, 3, 25),
            business_date=date(2025, 3, 25),
        )
    )
    # 12.00: 10.00 principal of #2, 2.00 held as the borrower's credit balance.
    second = db(
        lambda s: service.repay(
            s,
            loan_id=loan_id,
            amount=D("12.00"),
            value_date=date(2025, 3, 25),
            business_date=date(2025, 3, 25),
        )
    )
    assert second.unallocated == D("2.00")
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("403.98")
    assert bal[Account.SUSPENSE] == D("-2.00")
    assert bal[Account.FEE_RECEIVABLE] == D("0.00")

    # Reverse the 420.00: the 12.00 is re-applied alone: penalty 1.97, then 10.03 of the fee.
    db(
        lambda s: service.reverse_repayment(
            s, repayment_id=first.id, business_date=date(2025, 3, 26)
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PENALTY_RECEIVABLE] == D("0.00")
    assert bal[Account.FEE_RECEIVABLE] == D("9.97")
    assert bal[Account.INTEREST_RECEIVABLE] == D("9.34")
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("803.97")
    assert bal[Account.SUSPENSE] == D("0.00")
    with pytest.raises(Conflict):
        db(
            lambda s: service.reverse_repayment(
                s, repayment_id=first.id, business_date=date(2025, 3, 26)
            )
        )

    # Pay off on 2025-03-28. Accrual 26..28 March: penalty carry 0.002556 + 3 * 0.197255 =
    # 0.594323 -> 0.59; #3 interest 4.04 * 13 / 31 = 1.694 -> 1.69 (0.39 more).
    # Payoff = due on #2 (penalty 0.59 + fee 9.97 + interest 8.04 + principal 399.99 = 418.59)
    #        + #3 interest accrued 1.69 + #3 principal 403.98 = 824.26
    payoff = db(
        lambda s: service.payoff_quote(
            s, loan_id=loan_id, value_date=date(2025, 3, 28), business_date=date(2025, 3, 28)
        )
    )
    assert payoff.total == D("824.26")
    db(
        lambda s: service.prepay(
            s, loan_id=loan_id, value_date=date(2025, 3, 28), business_date=date(2025, 3, 28)
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    loan = db(lambda s: service.get_loan(s, loan_id))
    assert loan.status == "closed"
    assert all(bal[a] == 0 for a in (Account.PRINCIPAL_RECEIVABLE, Account.INTEREST_RECEIVABLE))
    # Income = 12.00 + 8.04 + 1.69 interest, 20.00 fee, 1.97 + 0.59 penalty = 44.29;
    # cash: -1200 + 408.03 + 12.00 + 824.26 = 44.29 (the reversed 420.00 nets out).
    assert bal[Account.INTEREST_INCOME] == D("-21.73")
    assert bal[Account.PENALTY_INCOME] == D("-2.56")
    assert bal[Account.CASH] == D("44.29")


def test_partial_prepayment_reduces_installment(db_url: str) -> None:
    """12000 at 12%, 12 months from 2025-01-01, prepay 6000 extra on the due date of #3."""
    db = Db(db_url)
    code = _product(db)
    loan_id = _book(db, code, "12000", 12, date(2025, 1, 1))
    db(lambda s: service.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 1)))
    loan = db(lambda s: service.get_loan(s, loan_id))
    level = loan.installments[0].principal + loan.installments[0].interest
    # 12000 * 0.01 / (1 - 1.01**-12) = 1066.1855 -> 1066.19
    assert level == D("1066.19")
    for month in (2, 3, 4):
        db(
            lambda s, m=month: service.repay(
                s,
                loan_id=loan_id,
                amount=level,
                value_date=date(2025, m, 1),
                business_date=date(2025, m, 1),
            )
        )
    before = db(lambda s: check_loan_consistent(s, loan_id))[Account.PRINCIPAL_RECEIVABLE]
    db(
        lambda s: service.prepay(
            s,
            loan_id=loan_id,
            amount=D("6000"),
            mode="reduce_installment",
            value_date=date(2025, 4, 1),
            business_date=date(2025, 4, 1),
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    # On a due date nothing of the next period has accrued, so all 6000 goes to principal.
    assert bal[Account.PRINCIPAL_RECEIVABLE] == before - D("6000")
    loan = db(lambda s: service.get_loan(s, loan_id))
    live = [i for i in loan.installments if not i.cancelled and i.due_date > date(2025, 4, 1)]
    assert len(live) == 9  # same remaining due dates, lower installment
    assert sum(i.principal for i in live) == before - D("6000")
    assert live[0].principal + live[0].interest < level


def test_write_off_then_recovery(db_url: str) -> None:
    db = Db(db_url)
    code = _product(db)
    loan_id = _book(db, code, "1000", 2, date(2025, 1, 10))
    db(lambda s: service.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 10)))
    db(
        lambda s: service.write_off(
            s, loan_id=loan_id, value_date=date(2025, 6, 1), business_date=date(2025, 6, 1)
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    # 1000 at 1% a month over two months: level 507.51; interest 10.00 + 5.02 = 15.02 accrued.
    assert bal[Account.WRITE_OFF_EXPENSE] == D("1015.02")
    assert all(bal[a] == 0 for a in (Account.PRINCIPAL_RECEIVABLE, Account.INTEREST_RECEIVABLE))
    db(
        lambda s: service.repay(
            s,
            loan_id=loan_id,
            amount=D("300"),
            value_date=date(2025, 7, 1),
            business_date=date(2025, 7, 1),
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.RECOVERY_INCOME] == D("-300.00")


def test_bad_inputs_write_nothing(db_url: str) -> None:
    db = Db(db_url)
    code = _product(db, max_principal=D("5000"))
    with pytest.raises(ValidationFailed) as exc:
        _book(db, code, "9000", 3, date(2025, 1, 1))
    assert exc.value.field == "principal"
    loan_id = _book(db, code, "1000", 3, date(2025, 1, 1))
    with pytest.raises(Conflict):
        db(
            lambda s: service.repay(
                s,
                loan_id=loan_id,
                amount=D("10"),
                value_date=date(2025, 1, 2),
                business_date=date(2025, 1, 2),
            )
        )
    db(lambda s: service.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 1)))
    with pytest.raises(ValidationFailed) as exc:
        db(
            lambda s: service.repay(
                s,
                loan_id=loan_id,
                amount=D("10"),
                value_date=date(2025, 2, 2),
                business_date=date(2025, 1, 2),
            )
        )
    assert exc.value.field == "value_date"
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.CASH] == D("-1000.00")


def test_mid_period_partial_prepayment_charges_no_day_twice(db_url: str) -> None:
    """12000 at 12%, 12 months from 2025-01-01 (level 1066.19); 3000.00 prepaid on 2025-01-17.

    By hand: 16 of 31 days accrued: 120.00 * 16 / 31 = 61.935 -> 61.93 interest receivable.
    The 3000 buys principal X with the interest accrued on X: X + 61.93 * X / 12000 = 3000
    -> X = 2984.5967; interest on it 61.93 * 2984.59 / 12000 = 15.40; X = 3000 - 15.40 = 2984.60.
    Remaining 9015.40 re-amortized over the 12 original due dates from 2025-01-01:
    level = 9015.40 * 0.01 / (1 - 1.01**-12) = 801.0063 -> 801.01; first interest 90.15, of
    which 61.93 - 15.40 = 46.53 is already accrued (= 90.15 * 16 / 31 = 46.53).
    """
    db = Db(db_url)
    code = _product(db)
    loan_id = _book(db, code, "12000", 12, date(2025, 1, 1))
    db(lambda s: service.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 1)))
    rep = db(
        lambda s: service.prepay(
            s,
            loan_id=loan_id,
            amount=D("3000.00"),
            mode="reduce_installment",
            value_date=date(2025, 1, 17),
            business_date=date(2025, 1, 17),
        )
    )
    assert rep.unallocated == D("0.00")
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("9015.40")
    assert bal[Account.INTEREST_RECEIVABLE] == D("46.53")
    assert bal[Account.INTEREST_INCOME] == D("-61.93")
    loan = db(lambda s: service.get_loan(s, loan_id))
    live = [i for i in loan.installments if not i.cancelled and i.due_date > date(2025, 1, 17)]
    assert len(live) == 12
    assert (live[0].principal + live[0].interest, live[0].interest) == (D("801.01"), D("90.15"))
    db(
        lambda s: service.repay(
            s,
            loan_id=loan_id,
            amount=D("801.01"),
            value_date=date(2025, 2, 1),
            business_date=date(2025, 2, 1),
        )
    )
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    # 801.01 - 90.15 = 710.86 principal; 9015.40 - 710.86 = 8304.54
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("8304.54")
    assert bal[Account.INTEREST_RECEIVABLE] == D("0.00")
    assert bal[Account.INTEREST_INCOME] == D("-105.55")  # 15.40 + 90.15
