"""Portfolio figures from the database on SQLite and PostgreSQL, stated by hand.

Loans, installments and repayments are real (loans.service). The delinquency rows and
month-end snapshots the daily close writes are inserted here as input data. Each test filters
on its own product, so other tests' loans in the shared database do not change the figures.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from mobilend.analytics import api, portfolio, service
from mobilend.analytics.service import Scope
from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.loans import service as loans
from mobilend.loans.models import Installment, Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.servicing.models import DelinquencySnapshot, LoanDelinquency
from tests.integration.helpers import Db

D = Decimal
pytestmark = pytest.mark.integration


def _product(db: Db, currency: str = "CNY") -> str:
    code = f"PF{uuid.uuid4().hex[:10]}"
    data = ProductIn(code=code, name="Phone loan", currency=currency, config=ProductConfig())
    db(lambda s: loans.create_product(s, data))
    return code


def _loan(db: Db, code: str, principal: str, disbursed: date, periods: int = 3) -> int:
    def book(s: object) -> int:
        data = LoanIn(
            product_code=code, principal=D(principal), periods=periods, start_date=disbursed
        )
        loan = loans.create_loan(s, data)  # type: ignore[arg-type]
        loans.disburse(s, loan_id=loan.id, value_date=disbursed)  # type: ignore[arg-type]
        return loan.id

    return db(book)


def _delinquency(
    loan_id: int,
    day: date,
    dpd: int,
    bucket: str,
    loan_class: str,
    outstanding: str,
    exposure: str,
    provision: str,
) -> LoanDelinquency:
    return LoanDelinquency(
        loan_id=loan_id,
        business_date=day,
        dpd=dpd,
        bucket=bucket,
        loan_class=loan_class,
        npl=loan_class in ("substandard", "doubtful", "loss"),
        overdue_principal=D("0"),
        overdue_interest=D("0"),
        overdue_fee=D("0"),
        overdue_penalty=D("0"),
        outstanding_principal=D(outstanding),
        exposure=D(exposure),
        provision=D(provision),
    )


def _snapshot(
    loan_id: int, day: date, disbursed: date, dpd: int, bucket: str, outstanding: str
) -> DelinquencySnapshot:
    loan_class = "normal" if dpd == 0 else "special_mention" if dpd <= 90 else "substandard"
    return DelinquencySnapshot(
        business_date=day,
        loan_id=loan_id,
        disbursed_on=disbursed,
        dpd=dpd,
        bucket=bucket,
        loan_class=loan_class,
        outstanding_principal=D(outstanding),
    )


def _insert(db: Db, rows: list[object]) -> None:
    db(lambda s: s.add_all(rows))


# --- summary ---------------------------------------------------------------------------------


def test_summary_par_npl_buckets_and_tiers_at_the_last_close(db_url: str) -> None:
    """Four loans at the close of 2026-02-10 (outstanding principal 10,000.00 in all):

    A 0 DPD M0 normal 4,000.00 | B 15 DPD M1 special mention 3,000.00
    C 45 DPD M2 special mention 1,000.00 | D 120 DPD M3+ substandard 2,000.00

    PAR1 = (3,000 + 1,000 + 2,000) / 10,000 = 0.6; PAR30 = 3,000 / 10,000 = 0.3;
    PAR60 = PAR90 = PAR120 = 2,000 / 10,000 = 0.2 (120 DPD counts at 120); PAR121 = 0.
    NPL = substandard 2,000 / 10,000 = 0.2. Exposure 4,040 + 3,030 + 1,010 + 2,100 = 10,180.00;
    provision 52.52 + 409.05 + 295.43 + 1,092.00 = 1,849.00.
    """
    db = Db(db_url)
    code, other = _product(db), _product(db)
    day = date(2026, 2, 10)
    a, b, c, d = (_loan(db, code, "5000", date(2025, 12, 1)) for _ in range(4))
    stale = _loan(db, code, "1000", date(2025, 12, 1))
    elsewhere = _loan(db, other, "9000", date(2025, 12, 1))
    _insert(
        db,
        [
            _delinquency(a, day, 0, "M0", "normal", "4000.00", "4040.00", "52.52"),
            _delinquency(b, day, 15, "M1", "special_mention", "3000.00", "3030.00", "409.05"),
            _delinquency(c, day, 45, "M2", "special_mention", "1000.00", "1010.00", "295.43"),
            _delinquency(d, day, 120, "M3+", "substandard", "2000.00", "2100.00", "1092.00"),
            # a row left from an earlier close is not part of the last close
            _delinquency(stale, date(2026, 1, 5), 200, "M3+", "doubtful", "900.00", "1", "1"),
            _delinquency(elsewhere, day, 300, "M3+", "loss", "9000.00", "9000.00", "9000.00"),
        ],
    )
    result = db(
        lambda s: service.summary(
            s, as_of=date(2026, 2, 11), scope=Scope(code), par_days=(1, 30, 60, 90, 120, 121)
        )
    )
    assert (result.close_date, result.source, result.currency) == (day, "loan_delinquency", "CNY")
    assert result.total == service.Tally(4, D("10000.00"), D("10180.00"), D("1849.00"))
    assert result.par == {
        1: D("0.6000"),
        30: D("0.3000"),
        60: D("0.2000"),
        90: D("0.2000"),
        120: D("0.2000"),
        121: D("0.0000"),
    }
    assert (result.npl_principal, result.npl_ratio) == (D("2000.00"), D("0.2000"))
    assert list(result.by_bucket) == ["M0", "M1", "M2", "M3+"]  # by the lowest DPD in each
    assert result.by_bucket["M2"] == service.Tally(1, D("1000.00"), D("1010.00"), D("295.43"))
    assert result.by_class == {
        "normal": service.Tally(1, D("4000.00"), D("4040.00"), D("52.52")),
        "special_mention": service.Tally(2, D("4000.00"), D("4040.00"), D("704.48")),
        "substandard": service.Tally(1, D("2000.00"), D("2100.00"), D("1092.00")),
        "doubtful": service.Tally(),
        "loss": service.Tally(),
    }
    body = api.summary_json(result)
    assert body["par"]["30"] == "0.3000" and body["provision"] == "1849.00"
    assert body["by_class"][1] == {
        "loan_class": "special_mention",
        "loans": 2,
        "outstanding_principal": "4000.00",
        "exposure": "4040.00",
        "provision": "704.48",
    }


def test_summary_before_the_last_close_reads_the_month_end_snapshot(db_url: str) -> None:
    """As of 2026-02-05 the last close (02-10) is in the future: the 2026-01-31 snapshot of
    2 loans, 600.00 at 0 DPD and 400.00 at 31 DPD, gives PAR30 = 400 / 1,000 = 0.4, NPL 0."""
    db = Db(db_url)
    code = _product(db)
    jan = date(2026, 1, 31)
    a, b = (_loan(db, code, "1000", date(2025, 12, 1)) for _ in range(2))
    _insert(
        db,
        [
            _delinquency(a, date(2026, 2, 10), 40, "M2", "special_mention", "550", "560", "9"),
            _snapshot(a, jan, date(2025, 12, 1), 0, "M0", "600.00"),
            _snapshot(b, jan, date(2025, 12, 1), 31, "M2", "400.00"),
        ],
    )
    result = db(lambda s: service.summary(s, as_of=date(2026, 2, 5), scope=Scope(code)))
    assert (result.close_date, result.source) == (jan, "month_end_snapshot")
    assert result.total == service.Tally(2, D("1000.00"), None, None)
    assert result.par[30] == D("0.4000") and result.par[1] == D("0.4000")
    assert result.npl_ratio == D("0.0000")
    assert api.summary_json(result)["exposure"] is None
    empty = db(lambda s: service.summary(s, as_of=date(2026, 1, 30), scope=Scope(code)))
    assert (empty.close_date, empty.total.loans, empty.par[30]) == (None, 0, None)


# --- roll rates ------------------------------------------------------------------------------

JAN, FEB = date(2025, 1, 31), date(2025, 2, 28)


def test_roll_rates_between_two_month_end_snapshots(db_url: str) -> None:
    """January -> February:

    M0: L1 1,000 stays, L2 2,000 -> M1. By balance 1,000/3,000 = 0.3333.. and 0.6666..; by
        largest remainder 0.3333 + 0.6667. By count 1/2 each.
    M1: L3 500 -> M0, L4 700 -> M2, L5 800 paid off (closed); 2,000 in all: 0.25, 0.35, 0.40.
        By count thirds: 0.3334 (the tie goes to the leftmost column), 0.3333, 0.3333.
    M2: L6 900 -> M3+: 1.0. M3+ held nothing in January: its row is None.
    L7 (1,500.00) is new in February.
    """
    db = Db(db_url)
    code, other = _product(db), _product(db)
    on = date(2024, 12, 1)
    ids = [_loan(db, code, "3000", on) for _ in range(7)]
    l1, l2, l3, l4, l5, l6, l7 = ids
    elsewhere = _loan(db, other, "3000", on)
    _insert(
        db,
        [
            _snapshot(l1, JAN, on, 0, "M0", "1000.00"),
            _snapshot(l2, JAN, on, 0, "M0", "2000.00"),
            _snapshot(l3, JAN, on, 5, "M1", "500.00"),
            _snapshot(l4, JAN, on, 20, "M1", "700.00"),
            _snapshot(l5, JAN, on, 25, "M1", "800.00"),
            _snapshot(l6, JAN, on, 45, "M2", "900.00"),
            _snapshot(elsewhere, JAN, on, 0, "M0", "3000.00"),
            _snapshot(l1, FEB, on, 0, "M0", "900.00"),
            _snapshot(l2, FEB, on, 12, "M1", "1950.00"),
            _snapshot(l3, FEB, on, 0, "M0", "450.00"),
            _snapshot(l4, FEB, on, 48, "M2", "700.00"),
            _snapshot(l6, FEB, on, 73, "M3+", "900.00"),
            _snapshot(l7, FEB, on, 0, "M0", "1500.00"),
            _snapshot(elsewhere, FEB, on, 40, "M2", "3000.00"),
        ],
    )
    result = db(lambda s: service.roll_rates(s, as_of=date(2025, 3, 10), scope=Scope(code)))
    assert (result.previous, result.current, result.currency) == (JAN, FEB, "CNY")
    m = result.matrix
    assert m.rows == ("M0", "M1", "M2", "M3+")
    assert m.columns == ("M0", "M1", "M2", "M3+", "closed")
    assert m.rates["M0"] == {
        "M0": D("0.3333"),
        "M1": D("0.6667"),
        "M2": D("0.0000"),
        "M3+": D("0.0000"),
        "closed": D("0.0000"),
    }
    assert m.count_rates["M0"]["M0"] == m.count_rates["M0"]["M1"] == D("0.5000")
    assert m.rates["M1"] == {
        "M0": D("0.2500"),
        "M1": D("0.0000"),
        "M2": D("0.3500"),
        "M3+": D("0.0000"),
        "closed": D("0.4000"),
    }
    assert [m.count_rates["M1"][c] for c in ("M0", "M2", "closed")] == [
        D("0.3334"),
        D("0.3333"),
        D("0.3333"),
    ]
    assert m.rates["M2"]["M3+"] == D("1.0000")
    assert set(m.rates["M3+"].values()) == {None}
    assert m.balances["M1"]["closed"] == D("800.00") and m.counts["M1"]["closed"] == 1
    assert (m.new_count, m.new_balance) == (1, D("1500.00"))
    # The same snapshots row by row through the pure module give the same matrix.
    jan_rows = db(lambda s: _bucket_rows(s, JAN, ids))
    feb_rows = db(lambda s: _bucket_rows(s, FEB, ids))
    assert m == portfolio.roll_rates(jan_rows, feb_rows, buckets=m.rows)
    # previous named explicitly: the same pair
    named = db(lambda s: service.roll_rates(s, as_of=FEB, previous=JAN, scope=Scope(code)).matrix)
    assert named == m
    body = api.roll_json(result)
    assert body["rows"][1]["count_rates"]["M0"] == "0.3334"
    assert body["rows"][3]["rates"]["M0"] is None
    assert body["new_balance"] == "1500.00"


def _bucket_rows(session: object, day: date, ids: list[int]) -> list[portfolio.BucketRow]:
    rows = session.scalars(  # type: ignore[attr-defined]
        select(DelinquencySnapshot).where(
            DelinquencySnapshot.business_date == day, DelinquencySnapshot.loan_id.in_(ids)
        )
    )
    return [portfolio.BucketRow(str(r.loan_id), r.bucket, r.outstanding_principal) for r in rows]


def test_roll_rates_refuse_missing_or_misordered_snapshots(db_url: str) -> None:
    db = Db(db_url)
    code = _product(db)
    on = date(2024, 12, 1)
    loan = _loan(db, code, "3000", on)
    _insert(db, [_snapshot(loan, JAN, on, 0, "M0", "1000.00")])
    with pytest.raises(NotFound) as only_one:
        db(lambda s: service.roll_rates(s, as_of=FEB, scope=Scope(code)))
    assert only_one.value.field == "previous"
    with pytest.raises(NotFound) as none_yet:
        db(lambda s: service.roll_rates(s, as_of=date(2025, 1, 30), scope=Scope(code)))
    assert none_yet.value.field == "as_of"
    with pytest.raises(ValidationFailed) as order:
        db(lambda s: service.roll_rates(s, as_of=FEB, previous=JAN, scope=Scope(code)))
    assert (order.value.field, order.value.rule) == ("previous", "before-current")
    with pytest.raises(NotFound) as unknown:
        db(lambda s: service.roll_rates(s, as_of=FEB, scope=Scope("NO-SUCH-PRODUCT")))
    assert unknown.value.field == "product_code"


# --- vintages --------------------------------------------------------------------------------


def test_vintage_curves_by_disbursement_month(db_url: str) -> None:
    """Cohort 2027-01: L1 1,000, L2 2,000, L3 3,000 (6,000.00, 3 loans); cohort 2027-02:
    L4 1,500, L5 500 and L6 1,000 that never reaches a snapshot (3,000.00, 3 loans).

    DPD at month-ends   Jan 31 (MOB 0 / -)   Feb 28 (MOB 1 / 0)   Mar 31 (MOB 2 / 1)
      L1, L2, L3          0, 0, 0              0, 10, 35            0, 40, 0
      L4, L5              -                    0, 0                 31, 0

    30+ DPD at the time: 2027-01 MOB1 L3 -> 3,000/6,000 = 0.5, count 1/3 = 0.3333; MOB2 L2
    -> 2,000/6,000 = 0.3333, 0.3333. 2027-02 MOB1 L4 -> 1,500/3,000 = 0.5, 0.3333.
    Ever 30+: 2027-01 MOB2 holds L3 (cured) and L2 -> 5,000/6,000 = 0.8333, 2/3 = 0.6667.
    A mid-March row (L1 at 99 DPD on 03-15) is not the month's last snapshot: ignored.
    L8, disbursed 2027-04-02, is after as_of.
    """
    db = Db(db_url)
    code = _product(db)
    jan, feb = date(2027, 1, 10), date(2027, 2, 5)
    books = [("1000", jan), ("2000", date(2027, 1, 20)), ("3000", date(2027, 1, 25))]
    books += [("1500", feb), ("500", date(2027, 2, 27)), ("1000", date(2027, 2, 10))]
    ids = [_loan(db, code, amount, day) for amount, day in books]
    _loan(db, code, "700", date(2027, 4, 2))
    dpd = {
        date(2027, 1, 31): [0, 0, 0, None, None],
        date(2027, 2, 28): [0, 10, 35, 0, 0],
        date(2027, 3, 31): [0, 40, 0, 31, 0],
    }
    rows: list[object] = [
        _snapshot(ids[i], day, books[i][1], days, "M0", "100.00")
        for day, values in dpd.items()
        for i, days in enumerate(values)
        if days is not None
    ]
    rows.append(_snapshot(ids[0], date(2027, 3, 15), jan, 99, "M3+", "100.00"))
    _insert(db, rows)
    as_of = date(2027, 3, 31)
    result = db(lambda s: service.vintages(s, as_of=as_of, scope=Scope(code)))
    t = result.table
    assert t.cohorts == ("2027-01", "2027-02")
    assert t.loans == {"2027-01": 3, "2027-02": 3}
    assert t.principal == {"2027-01": D("6000.00"), "2027-02": D("3000.00")}
    assert t.amount_share == {
        "2027-01": {0: D("0.0000"), 1: D("0.5000"), 2: D("0.3333")},
        "2027-02": {0: D("0.0000"), 1: D("0.5000")},
    }
    assert t.count_share == {
        "2027-01": {0: D("0.0000"), 1: D("0.3333"), 2: D("0.3333")},
        "2027-02": {0: D("0.0000"), 1: D("0.3333")},
    }
    ever = db(lambda s: service.vintages(s, as_of=as_of, cumulative=True, scope=Scope(code)))
    assert ever.table.amount_share["2027-01"] == {0: D("0"), 1: D("0.5"), 2: D("0.8333")}
    assert ever.table.count_share["2027-01"][2] == D("0.6667")
    assert ever.table.amount_share["2027-02"] == {0: D("0"), 1: D("0.5")}
    # The pure module on the same loans and month-end rows gives the same tables.
    cohort_loans = [
        portfolio.CohortLoan(str(ids[i]), day, D(amount)) for i, (amount, day) in enumerate(books)
    ]
    seen = [
        portfolio.MonthOnBook(str(ids[i]), portfolio.months_on_book(books[i][1], day), days)
        for day, values in dpd.items()
        for i, days in enumerate(values)
        if days is not None
    ]
    assert t == portfolio.vintage_curves(cohort_loans, seen)
    assert ever.table == portfolio.vintage_curves(cohort_loans, seen, cumulative=True)
    early = db(lambda s: service.vintages(s, as_of=date(2027, 2, 28), scope=Scope(code)))
    assert early.table.amount_share == {
        "2027-01": {0: D("0.0000"), 1: D("0.5000")},
        "2027-02": {0: D("0.0000")},
    }
    body = api.vintages_json(result)
    assert body["cohorts"][0]["months_on_book"][1] == {
        "mob": 1,
        "amount_share": "0.5000",
        "count_share": "0.3333",
    }
    with pytest.raises(ValidationFailed) as bad:
        db(lambda s: service.vintages(s, as_of=as_of, threshold_days=-1))
    assert bad.value.field == "threshold_days"


# --- collection rate -------------------------------------------------------------------------


def test_collection_rate_from_installments_and_allocations(db_url: str) -> None:
    """Loans A (from 2025-01-15) and B (from 2025-01-20): 1,200 at 12% over 3 months, so
    installment 1 is 408.03 (12.00 interest + 396.03 principal; worked out in
    test_loan_lifecycle). February's due: 408.03 + 408.03 = 816.06.

    A pays 408.03 on 02-15. B pays 200.00 on 02-25 and 300.00 on 03-05 (208.03 of it to
    installment 1, the rest held as credit).
      as of 02-28: (408.03 + 200.00) / 816.06 = 608.03 / 816.06 = 0.74508 -> 0.7451
      as of 03-10: 816.06 / 816.06 = 1
    The 200.00 is then reversed; the 300.00 is re-applied: 12.00 interest + 288.00 principal.
      as of 02-28: 408.03 / 816.06 = 0.5
      as of 03-10: (408.03 + 300.00) / 816.06 = 708.03 / 816.06 = 0.867620 -> 0.8676
    """
    db = Db(db_url)
    code = _product(db)
    a = _loan(db, code, "1200", date(2025, 1, 15))
    b = _loan(db, code, "1200", date(2025, 1, 20))

    def pay(loan_id: int, amount: str, day: date) -> int:
        return db(
            lambda s: (
                loans.repay(
                    s, loan_id=loan_id, amount=D(amount), value_date=day, business_date=day
                ).id
            )
        )

    pay(a, "408.03", date(2025, 2, 15))
    first = pay(b, "200.00", date(2025, 2, 25))
    pay(b, "300.00", date(2025, 3, 5))

    def rate(as_of: date) -> service.CollectionFigures:
        return db(
            lambda s: service.collection_rate(
                s, start=date(2025, 2, 1), end=date(2025, 2, 28), as_of=as_of, scope=Scope(code)
            )
        )

    feb = rate(date(2025, 2, 28))
    assert (feb.installments, feb.amount_due, feb.collected) == (2, D("816.06"), D("608.03"))
    assert feb.rate == D("0.7451")
    assert rate(date(2025, 3, 10)).rate == D("1.0000")
    db(lambda s: loans.reverse_repayment(s, repayment_id=first, business_date=date(2025, 3, 10)))
    assert rate(date(2025, 2, 28)).rate == D("0.5000")
    later = rate(date(2025, 3, 10))
    assert (later.collected, later.rate) == (D("708.03"), D("0.8676"))
    assert api.collection_json(later)["uncollected"] == "108.03"
    # The pure module over each installment's sub-ledger (paid_* columns) agrees.
    assert later.rate == db(lambda s: _pure_rate(s, [a, b], date(2025, 2, 1), date(2025, 2, 28)))


def _pure_rate(session: object, ids: list[int], start: date, end: date) -> Decimal | None:
    rows = session.scalars(  # type: ignore[attr-defined]
        select(Installment).where(Installment.loan_id.in_(ids), Installment.cancelled.is_(False))
    )
    dues = []
    for i in rows:
        paid = i.paid_principal + i.paid_interest + i.paid_fee
        dues.append(portfolio.InstallmentDue(i.due_date, i.total, min(paid, i.total)))
    return portfolio.collection_rate(dues, start=start, end=end)


def test_collection_rate_checks_its_period(db_url: str) -> None:
    db = Db(db_url)
    with pytest.raises(ValidationFailed) as order:
        db(
            lambda s: service.collection_rate(
                s, start=date(2025, 3, 1), end=date(2025, 2, 1), as_of=date(2025, 4, 1)
            )
        )
    assert (order.value.field, order.value.rule) == ("end", "not-before-start")
    with pytest.raises(ValidationFailed) as early:
        db(
            lambda s: service.collection_rate(
                s, start=date(2025, 3, 1), end=date(2025, 3, 31), as_of=date(2025, 3, 15)
            )
        )
    assert early.value.field == "as_of"
    with pytest.raises(ValidationFailed) as currency:
        Scope(currency="cny")
    assert (currency.value.field, currency.value.rule) == ("currency", "iso-4217")
    with pytest.raises(ValidationFailed) as days:
        db(lambda s: service.summary(s, as_of=date(2025, 3, 1), par_days=(30, -1)))
    assert days.value.field == "par_days"


# --- the whole book: currencies are never added together -------------------------------------


def test_a_book_in_two_currencies_needs_a_currency(isolated_db_url: str) -> None:
    """CNY 4,000.00 with 1,000.00 at 45 DPD, USD 500.00 current; PAR30 of CNY = 0.25."""
    db = Db(isolated_db_url)
    cny, usd = _product(db), _product(db, currency="USD")
    day = date(2026, 2, 10)
    a, b = _loan(db, cny, "5000", date(2026, 1, 2)), _loan(db, cny, "5000", date(2026, 1, 2))
    c = _loan(db, usd, "800", date(2026, 1, 2))
    _insert(
        db,
        [
            _delinquency(a, day, 0, "M0", "normal", "3000.00", "3000.00", "10.00"),
            _delinquency(b, day, 45, "M2", "special_mention", "1000.00", "1000.00", "90.00"),
            _delinquency(c, day, 0, "M0", "normal", "500.00", "500.00", "1.00"),
        ],
    )
    with pytest.raises(ValidationFailed) as mixed:
        db(lambda s: service.summary(s, as_of=day))
    assert (mixed.value.field, mixed.value.rule) == ("currency", "single-currency")
    assert "CNY, USD" in mixed.value.detail
    result = db(lambda s: service.summary(s, as_of=day, scope=Scope(currency="CNY")))
    assert (result.currency, result.total.loans, result.par[30]) == ("CNY", 2, D("0.2500"))
    usd_only = db(lambda s: service.summary(s, as_of=day, scope=Scope(currency="USD")))
    assert (usd_only.total.outstanding_principal, usd_only.par[30]) == (D("500.00"), D("0"))
    with pytest.raises(ValidationFailed):
        db(lambda s: service.vintages(s, as_of=day))
    by_currency = db(lambda s: service.vintages(s, as_of=day, scope=Scope(currency="USD")))
    assert by_currency.table.loans == {"2026-01": 1}
    assert by_currency.table.principal == {"2026-01": D("800.00")}
    assert db(lambda s: s.get(Loan, c)).currency == "USD"
