"""The daily-close benchmark's portfolio generator (bench/portfolio.py), PostgreSQL only.

A book of 300 loans cloned from 100 templates is checked against the Decimal path: a sample of
loans replayed through the loan services (in a unit of work that is rolled back) must give the
same installments, loan row and journal; every copy equals its template; every loan's ledger
matches its sub-ledger; and some figures are recomputed here by hand (interest to date, penalty
interest with its carry, late fees, the bare UPDATE's interest).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from math import ceil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.orm import Session, sessionmaker

from mobilend.db.session import build_engine
from mobilend.ledger.service import loan_balances
from mobilend.loans import service
from mobilend.loans.models import Loan
from mobilend.loans.schemas import LoanIn
from tests.integration.helpers import check_loan_consistent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import portfolio

pytestmark = [pytest.mark.integration, pytest.mark.pg]

BUSINESS_DATE = date(2025, 6, 30)
LAST_CLOSED = date(2025, 6, 29)
LOANS, TEMPLATES = 300, 100
INSTALLMENT_COLUMNS = (
    "number, start_date, due_date, principal, interest, fee, interest_accrued, fee_charged,"
    " penalty_charged, paid_principal, paid_interest, paid_fee, paid_penalty,"
    " late_fee_charged, cancelled"
)
UNPAID = (  # an installment (alias i) with something charged and not paid
    "i.principal - i.paid_principal + i.interest_accrued - i.paid_interest + i.fee_charged"
    " - i.paid_fee + i.penalty_charged - i.paid_penalty > 0"
)
# The products' settings, written out here rather than read from bench/portfolio.py: (penalty
# % a year, days in the penalty year, late fee, grace days, (special mention, substandard,
# doubtful, loss) DPD thresholds).
PRODUCTS = {
    "bench-pawn": (Decimal("18"), 365, Decimal("30"), 3, (0, 90, 270, 360)),
    "bench-lock": (Decimal("21"), 360, Decimal("0"), 0, (0, 90, 270, 360)),
    "bench-app": (Decimal("24"), 365, Decimal("20"), 1, (0, 60, 90, 150)),
    "bench-merchant": (Decimal("30"), 360, Decimal("50"), 0, (0, 90, 270, 360)),
}


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _rows(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _template_of(loan_id: int) -> int:
    return (loan_id - 1) % TEMPLATES + 1


def test_generated_book_matches_the_decimal_path(isolated_pg_url: str) -> None:
    summary = portfolio.generate(
        isolated_pg_url, loans=LOANS, business_date=BUSINESS_DATE, seed=7, templates=TEMPLATES
    )
    assert (summary.loans, summary.first_loan_id, summary.last_loan_id) == (LOANS, 1, LOANS)
    with psycopg.connect(_libpq(isolated_pg_url)) as conn:
        _check_dense_and_active(conn)
        _check_delinquency_mix(conn, summary)
        _check_copies_equal_templates(conn)
        _check_interest_to_date(conn)
        _check_penalty_and_late_fees(conn)
        _check_bare_update(conn)
    engine = build_engine(isolated_pg_url)
    try:
        factory = sessionmaker(engine, expire_on_commit=False)
        with factory() as session:
            for loan_id in range(1, LOANS + 1):
                check_loan_consistent(session, loan_id)
        _check_replays(factory)
    finally:
        engine.dispose()


def _check_dense_and_active(conn: psycopg.Connection[Any]) -> None:
    assert _rows(conn, "SELECT count(*), min(id), max(id) FROM loans") == [(LOANS, 1, LOANS)]
    assert _rows(conn, "SELECT status, accrued_through, count(*) FROM loans GROUP BY 1, 2") == [
        ("active", LAST_CLOSED, LOANS)
    ]
    # the three copies of every template: ids t, t + 100, t + 200
    by_template = _rows(
        conn, "SELECT mod(id - 1, 100), count(*) FROM loans GROUP BY 1 HAVING count(*) <> 3"
    )
    assert by_template == []


def _check_delinquency_mix(conn: psycopg.Connection[Any], summary: Any) -> None:
    """DPD on the business date = days since the oldest installment due before it and unpaid."""
    rows = _rows(
        conn,
        f"SELECT p.code, %s - min(i.due_date) FROM installments i JOIN loans l ON l.id = i.loan_id"
        f" JOIN products p ON p.id = l.product_id WHERE NOT i.cancelled AND i.due_date < %s"
        f" AND {UNPAID} GROUP BY l.id, p.code",
        BUSINESS_DATE,
        BUSINESS_DATE,
    )
    overdue = len(rows)
    assert 0.05 <= overdue / LOANS <= 0.08
    assert summary.overdue == overdue
    dpds = [dpd for _, dpd in rows]
    assert min(dpds) >= 1 and max(dpds) <= 200
    buckets = Counter("M1" if d <= 30 else "M2" if d <= 60 else "M3+" for d in dpds)
    assert summary.by_bucket == {"M0": LOANS - overdue, **buckets}
    assert set(buckets) == {"M1", "M2", "M3+"}
    names = ("special_mention", "substandard", "doubtful", "loss")
    classes = Counter(names[sum(1 for t in PRODUCTS[code][4] if dpd > t) - 1] for code, dpd in rows)
    assert summary.by_class == {"normal": LOANS - overdue, **classes}
    assert set(classes) == set(names)
    partly_paid = _rows(
        conn,
        f"SELECT count(DISTINCT loan_id) FROM installments i WHERE NOT cancelled"
        f" AND due_date < %s AND {UNPAID} AND paid_principal + paid_interest + paid_fee"
        f" + paid_penalty > 0",
        BUSINESS_DATE,
    )[0][0]
    assert partly_paid > 0


def _check_copies_equal_templates(conn: psycopg.Connection[Any]) -> None:
    installments: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for loan_id, *row in _rows(
        conn, f"SELECT loan_id, {INSTALLMENT_COLUMNS} FROM installments ORDER BY loan_id, number"
    ):
        installments[loan_id].append(tuple(row))
    loans = {
        r[0]: r[1:]
        for r in _rows(
            conn,
            "SELECT id, product_id, principal, terms::text, disbursed_on, penalty_carry FROM loans",
        )
    }
    entries: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for loan_id, kind, day, description, lines in _rows(
        conn,
        "SELECT e.loan_id, e.kind, e.business_date, e.description,"
        " array_agg(l.account || ' ' || l.amount ORDER BY l.account)"
        " FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id"
        " GROUP BY e.id ORDER BY e.id",
    ):
        text = description.replace(f"of loan {loan_id}", "of loan #")
        entries[loan_id].append((kind, day, text, tuple(lines)))
    payments: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for loan_id, *row in _rows(
        conn,
        "SELECT r.loan_id, r.kind, r.amount, r.value_date, r.unallocated,"
        " (SELECT array_agg(a.installment_number || a.component || a.amount ORDER BY a.id)"
        "  FROM allocations a WHERE a.repayment_id = r.id AND a.entry_id = r.entry_id)"
        " FROM repayments r ORDER BY r.id",
    ):
        payments[loan_id].append(tuple(row))
    for loan_id in range(TEMPLATES + 1, LOANS + 1):
        template = _template_of(loan_id)
        assert installments[loan_id] == installments[template]
        assert loans[loan_id] == loans[template]
        assert entries[loan_id] == entries[template]
        assert payments[loan_id] == payments[template]
    assert _rows(conn, "SELECT count(DISTINCT borrower_ref) FROM loans WHERE id > 100") == [(200,)]


def _check_interest_to_date(conn: psycopg.Connection[Any]) -> None:
    """The current period's interest accrued through the last closed day, by hand: scheduled
    interest x days elapsed / days in the period, floored to the cent."""
    rows = _rows(
        conn,
        "SELECT interest, start_date, due_date, interest_accrued FROM installments"
        " WHERE NOT cancelled AND start_date < %s AND due_date > %s",
        LAST_CLOSED,
        LAST_CLOSED,
    )
    assert len(rows) >= LOANS * 0.8
    for interest, start, due, accrued in rows:
        cents = int(interest * 100) * (LAST_CLOSED - start).days // (due - start).days
        assert accrued == Decimal(cents) / 100, (interest, start, due, accrued)


def _check_penalty_and_late_fees(conn: psycopg.Connection[Any]) -> None:
    """Penalty interest by hand on overdue loans that never paid late or in part: each overdue
    installment's principal x rate / days in the year, rounded up at 1e-20 a day, for each day
    from the day after its due date through the last closed day; posted + carry = the sum."""
    overdue = _rows(
        conn,
        f"SELECT i.loan_id, p.code, l.penalty_carry, i.due_date, i.principal, i.fee,"
        f" i.fee_charged, i.penalty_charged, i.late_fee_charged, i.paid_principal"
        f" FROM installments i JOIN loans l ON l.id = i.loan_id"
        f" JOIN products p ON p.id = l.product_id"
        f" WHERE NOT i.cancelled AND i.due_date < %s AND {UNPAID} ORDER BY i.loan_id, i.number",
        BUSINESS_DATE,
    )
    messy = {
        r[0]
        for r in _rows(
            conn,
            "SELECT r.loan_id FROM repayments r WHERE NOT EXISTS (SELECT 1 FROM installments i"
            " WHERE i.loan_id = r.loan_id AND i.due_date = r.value_date)"
            " UNION SELECT loan_id FROM installments WHERE paid_penalty > 0",
        )
    }
    expected: dict[int, Fraction] = defaultdict(Fraction)
    charged: dict[int, Decimal] = defaultdict(Decimal)
    carry: dict[int, Decimal] = {}
    late_fees = 0
    for loan_id, code, loan_carry, due, principal, fee, fee_charged, penalty, late, paid in overdue:
        rate, year, late_fee, grace, _ = PRODUCTS[code]
        if late_fee and due + timedelta(days=grace) < LAST_CLOSED:
            assert late and fee_charged == fee + late_fee
            late_fees += 1
        if loan_id in messy or paid:
            continue
        per_day = Fraction(principal) * Fraction(rate) / 100 / year
        per_day = Fraction(ceil(per_day * 10**20), 10**20)
        expected[loan_id] += per_day * (LAST_CLOSED - due).days
        charged[loan_id] += penalty
        carry[loan_id] = Decimal(loan_carry)  # stored as text (db.base.Precise)
    assert late_fees > 0
    assert len(expected) >= 6
    for loan_id, total in expected.items():
        assert Fraction(charged[loan_id] + carry[loan_id]) == total, loan_id
        assert 0 <= carry[loan_id] < Decimal("0.01")


def _check_bare_update(conn: psycopg.Connection[Any]) -> None:
    """The bare UPDATE sets the business date's interest by the same hand formula and advances
    accrued_through; `bare_accrual_update` rolls it back."""
    before = _rows(
        conn,
        "SELECT sum(interest_accrued), max(accrued_through) FROM installments"
        " JOIN loans ON loans.id = installments.loan_id",
    )
    conn.commit()
    with conn.transaction(force_rollback=True):
        conn.execute(portfolio.BARE_INSTALLMENTS_SQL, {"day": BUSINESS_DATE})
        conn.execute(portfolio.BARE_LOANS_SQL, {"day": BUSINESS_DATE})
        rows = _rows(
            conn,
            "SELECT interest, start_date, due_date, interest_accrued FROM installments"
            " WHERE NOT cancelled AND start_date < %s AND due_date >= %s",
            BUSINESS_DATE,
            BUSINESS_DATE,
        )
        assert len(rows) >= LOANS * 0.8
        for interest, start, due, accrued in rows:
            cents = int(interest * 100) * (BUSINESS_DATE - start).days // (due - start).days
            assert accrued == Decimal(cents) / 100
        assert _rows(conn, "SELECT DISTINCT accrued_through FROM loans") == [(BUSINESS_DATE,)]
    seconds = portfolio.bare_accrual_update(conn, business_date=BUSINESS_DATE)
    assert seconds > 0
    after = _rows(
        conn,
        "SELECT sum(interest_accrued), max(accrued_through) FROM installments"
        " JOIN loans ON loans.id = installments.loan_id",
    )
    assert after == before and before[0][1] == LAST_CLOSED


def _check_replays(factory: sessionmaker[Session]) -> None:
    """Copies (ids 101..300) of the overdue templates, those with a prepayment or a late
    payment and some others, replayed through the services from their own booking and
    repayments: same installments, loan row, balances and entries. Rolled back."""
    with factory() as session:
        rows = session.connection().exec_driver_sql(
            "SELECT l.id FROM loans l WHERE l.id > 100 AND (mod(l.id, 11) = 0 OR EXISTS ("
            " SELECT 1 FROM installments i WHERE i.loan_id = l.id AND (i.cancelled"
            " OR i.penalty_charged > 0))) ORDER BY l.id"
        )
        sample = [r[0] for r in rows]
    assert len(sample) >= 20
    replayed = 0
    with factory() as session:
        for loan_id in sample:
            if _template_of(loan_id) in {_template_of(x) for x in sample if x < loan_id}:
                continue
            _replay_and_compare(session, loan_id)
            replayed += 1
        session.rollback()
    assert replayed >= 15


def _replay_and_compare(session: Session, loan_id: int) -> None:
    original = session.get(Loan, loan_id)
    assert original is not None
    code = (
        session.connection()
        .exec_driver_sql("SELECT code FROM products WHERE id = %s", (original.product_id,))
        .scalar_one()
    )
    terms = service.terms_of(original)
    copy = service.create_loan(
        session,
        LoanIn(
            product_code=code,
            principal=terms.principal,
            periods=terms.periods,
            start_date=terms.start,
            borrower_ref="replay",
        ),
    )
    assert original.disbursed_on is not None and original.accrued_through is not None
    service.disburse(session, loan_id=copy.id, value_date=original.disbursed_on)
    payments = session.connection().exec_driver_sql(
        "SELECT kind, amount, value_date, prepay_mode FROM repayments WHERE loan_id = %s"
        " ORDER BY id",
        (loan_id,),
    )
    for kind, amount, value_date, mode in payments.all():
        if kind == "prepayment":
            service.prepay(
                session,
                loan_id=copy.id,
                value_date=value_date,
                business_date=value_date,
                amount=amount,
                mode=mode,
            )
        else:
            service.repay(
                session,
                loan_id=copy.id,
                amount=amount,
                value_date=value_date,
                business_date=value_date,
            )
    service.accrue(session, loan_id=copy.id, through=original.accrued_through)
    session.flush()
    session.refresh(original)

    def state(loan: Loan) -> tuple[Any, ...]:
        rows = sorted(
            (
                i.number, i.start_date, i.due_date, i.principal, i.interest, i.fee,
                i.interest_accrued, i.fee_charged, i.penalty_charged, i.paid_principal,
                i.paid_interest, i.paid_fee, i.paid_penalty, i.late_fee_charged, i.cancelled,
            )
            for i in loan.installments
        )  # fmt: skip
        head = (loan.status, loan.principal, loan.disbursed_on, loan.accrued_through)
        return head, loan.penalty_carry, rows

    def journal(loan: Loan) -> list[tuple[Any, ...]]:
        rows = session.connection().exec_driver_sql(
            "SELECT e.kind, e.business_date, array_agg(l.account || ' ' || l.amount"
            " ORDER BY l.account) FROM journal_entries e JOIN journal_lines l"
            " ON l.entry_id = e.id WHERE e.loan_id = %s GROUP BY e.id ORDER BY e.id",
            (loan.id,),
        )
        return [tuple(r) for r in rows]

    assert state(original) == state(copy), loan_id
    assert loan_balances(session, original.id) == loan_balances(session, copy.id)
    assert journal(original) == journal(copy)
