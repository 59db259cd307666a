"""Pledges, mark-to-market, margin calls and liquidation on SQLite and PostgreSQL.

Every figure is worked out by hand in the comments. On PostgreSQL `mark_all` runs the
set-based SQL, on SQLite the per-pledge Decimal path: the same hand figures check both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilend.collateral import catalog, grading, marking, pledges, prices, service
from mobilend.collateral.models import CollateralEvent, MarginCall, Pledge
from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.ledger.accounts import Account
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.notify.models import OutboxMessage
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
pytestmark = pytest.mark.integration
NOW = datetime(2025, 1, 15, 4, tzinfo=UTC)
GOOD = grading.Condition(screen="visible_wear", body="flawless", battery_health_pct=95)


def luhn_imei(first14: str) -> str:
    """Append the Luhn check digit (written here, independently of python-stdnum)."""
    total = 0
    for i, ch in enumerate(first14):
        n = int(ch)
        if i % 2 == 1:  # every second digit from the left is doubled (14 digits + check)
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return first14 + str((10 - total % 10) % 10)


def test_luhn_helper_on_a_published_imei() -> None:
    # The IMEI in the GSMA/Wikipedia example: 49015420323751 -> check digit 8.
    assert luhn_imei("49015420323751") == "490154203237518"


def iphone13_imei(serial: int) -> str:
    return luhn_imei(f"35104463{serial:06d}")  # TAC 35104463: iPhone 13 (seed catalog)


def _setup(db: Db, *, rate: str = "12", schedule: str = "annuity") -> str:
    code = f"P{uuid.uuid4().hex[:10]}"
    cfg = ProductConfig(annual_rate_pct=D(rate), schedule=schedule)  # type: ignore[arg-type]
    db(lambda s: loans.create_product(s, ProductIn(code=code, name="Phone loan", config=cfg)))
    db(lambda s: service.import_catalog(s, catalog.seed_catalog()))
    return code


def _quotes(db: Db, day: date, *values: str) -> None:
    quotes = [
        prices.PriceQuote("apple-iphone-13", 128, "good", D(v), day, f"src{i}")
        for i, v in enumerate(values)
    ]
    db(lambda s: service.import_quotes(s, quotes, now=NOW))


def _loan(db: Db, code: str, principal: str = "2000", periods: int = 12) -> int:
    loan = db(
        lambda s: loans.create_loan(
            s,
            LoanIn(
                product_code=code,
                principal=D(principal),
                periods=periods,
                start_date=date(2025, 1, 15),
            ),
        )
    )
    return int(loan.id)


def _pledge(db: Db, loan_id: int, imei: str, mode: str = "pawn") -> pledges.Registered:
    return db(
        lambda s: pledges.register(
            s,
            loan_id=loan_id,
            imei=imei,
            storage_gb=128,
            condition=GOOD,
            custody_mode=mode,
            location="Store 1, Shenzhen" if mode == "pawn" else None,
            business_date=date(2025, 1, 15),
            now=NOW,
        )
    )


def _mark(db: Db, day: date) -> dict[str, int]:
    return db(lambda s: marking.mark_all(s, on=day, now=NOW))


def _state(db: Db, pledge_id: int) -> tuple[D, D, D | None, str, D]:
    p = db(lambda s: s.get(Pledge, pledge_id))
    return p.current_value, p.outstanding, p.ltv, p.ltv_status, p.shortfall


def _events(db: Db, pledge_id: int) -> list[tuple[str, dict[str, object]]]:
    rows = db(
        lambda s: list(
            s.scalars(
                select(CollateralEvent)
                .where(CollateralEvent.pledge_id == pledge_id)
                .order_by(CollateralEvent.id)
            )
        )
    )
    return [(e.kind, e.detail) for e in rows]


def test_value_ltv_margin_call_as_the_price_falls_and_recovers(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _setup(db)
    # Quotes for iPhone 13 128 GB, grade good: 3000, 3100, 3200 -> median 3100.00
    # (MAD 100 -> none rejected); newest 3 days old on 2025-01-15 -> fresh, market basis.
    _quotes(db, date(2025, 1, 10), "3000")
    _quotes(db, date(2025, 1, 11), "3100")
    _quotes(db, date(2025, 1, 12), "3200")
    loan_id = _loan(db, code)
    done = _pledge(db, loan_id, iphone13_imei(1))
    # Condition: screen visible_wear -> good (0.75), unlocked (factor 1): value 3100.00.
    # Forecast to maturity 2026-01-15 (365 days): 3 quotes are too few to fit the model or
    # Apple's pooled points, so the Apple default: 13.8% lost in a year -> ratio 0.862000.
    # forecast 3100.00 x 0.862 = 2672.20; lending min(3100, 2672.20) x (1 - 0.20) = 2137.76.
    v = done.valuation
    assert (v.value.basis, v.curve.source) == ("market", "tier-default")
    assert v.forecast_ratio == D("0.862000")
    assert v.value.current_value == D("3100.00")
    assert v.value.forecast_value == D("2672.20")
    assert v.value.lending_value == D("2137.76")
    # 2000 / 3100 = 0.645161... -> 0.6452 (rounded up)
    p = done.pledge
    assert (p.ltv, p.ltv_status, p.outstanding) == (D("0.6452"), "ok", D("2000"))
    db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 15)))

    # 2025-02-12: the window (01-13, 02-12] holds 2300, 2350, 2250 -> value 2300.00.
    # Outstanding 2000.00 (no accrual run). LTV 2000 / 2300 = 0.869565 -> 0.8696: warning
    # (>= 0.85). Shortfall against max LTV 0.80: 2000 / 0.8 - 2300 = 200.00.
    _quotes(db, date(2025, 2, 10), "2300", "2350", "2250")
    assert _mark(db, date(2025, 2, 12))["marked"] == 1
    assert _state(db, p.id) == (D("2300.00"), D("2000.00"), D("0.8696"), "warning", D("200.00"))

    # 2025-02-21: window (01-22, 02-21]: 2250 2300 2350 and 2000 2050 2100 -> median
    # (2100 + 2250) / 2 = 2175.00 (MAD 125: none rejected). LTV 2000 / 2175 = 0.919540 ->
    # 0.9196: margin call (>= 0.90). Shortfall 2500 - 2175 = 325.00; cash to cure:
    # 2000 - 2175 x 0.8 = 2000 - 1740 = 260.00, due 7 days later: 2025-02-28.
    _quotes(db, date(2025, 2, 20), "2000", "2050", "2100")
    _mark(db, date(2025, 2, 21))
    assert _state(db, p.id) == (D("2175.00"), D("2000.00"), D("0.9196"), "margin_call", D("325.00"))
    call = db(lambda s: s.scalar(select(MarginCall).where(MarginCall.pledge_id == p.id)))
    assert (call.status, call.due_on) == ("open", date(2025, 2, 28))
    assert (call.shortfall, call.prepayment_to_cure) == (D("325.00"), D("260.00"))

    # 2025-02-27: nine quotes in (01-28, 02-27] (the six above and 2600 2650 2700) -> median
    # 2300.00 (MAD 250: none rejected). LTV 0.8696 again: warning, and the call is cured.
    _quotes(db, date(2025, 2, 26), "2600", "2650", "2700")
    _mark(db, date(2025, 2, 27))
    assert _state(db, p.id) == (D("2300.00"), D("2000.00"), D("0.8696"), "warning", D("200.00"))
    call = db(lambda s: s.get(MarginCall, call.id))
    assert (call.status, call.closed_on) == ("cured", date(2025, 2, 27))

    before = _events(db, p.id)
    _mark(db, date(2025, 2, 27))  # the same date again changes nothing
    assert _events(db, p.id) == before
    assert [kind for kind, _ in before] == [
        "registered",
        "ltv_warning",
        "ltv_margin_call",
        "margin_call",
        "ltv_warning",
        "margin_call_cured",
    ]
    assert before[2][1] == {
        "previous": "warning",
        "value": "2175.00",
        "outstanding": "2000.00",
        "ltv": "0.9196",
        "shortfall": "325.00",
        "prepayment_to_cure": "260.00",
    }
    assert before[3][1]["due_on"] == "2025-02-28"
    # The borrower was told, in the same transactions (the outbox; sent by the relay).
    notices = db(lambda s: [(m.topic, m.params) for m in s.scalars(select(OutboxMessage))])
    assert notices == [
        (
            "collateral.margin_call",
            {
                "loan_id": loan_id,
                "value": "2175.00",
                "ltv_pct": "91.96",
                "prepayment_to_cure": "260.00",
                "due_on": "2025-02-28",
            },
        ),
        (
            "collateral.margin_call_cured",
            {"loan_id": loan_id, "value": "2300.00", "ltv_pct": "86.96"},
        ),
    ]


def test_an_unanswered_margin_call_expires(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _setup(db)
    _quotes(db, date(2025, 1, 12), "3000", "3100", "3200")
    loan_id = _loan(db, code)
    p = _pledge(db, loan_id, iphone13_imei(2)).pledge
    # 2025-02-10: window (01-11, 02-10]: 3000 3100 3200 and 1600 1650 1700 -> median
    # (1700 + 3000) / 2 = 2350.00; MAD = median(650 650 700 750 750 850) = 725, limit
    # 3 x 1.4826 x 725 = 3224.6: none rejected. LTV 2000 / 2350 = 0.851063 -> 0.8511: warning.
    _quotes(db, date(2025, 2, 10), "1600", "1650", "1700")
    _mark(db, date(2025, 2, 10))
    assert _state(db, p.id)[3] == "warning"
    # 2025-02-12: window (01-13, 02-12] holds only 1600 1650 1700 -> 1650.00;
    # LTV 2000 / 1650 = 1.212121 -> 1.2122 >= 1.00: liquidation; a call opens, due 02-19.
    _mark(db, date(2025, 2, 12))
    assert _state(db, p.id)[2:4] == (D("1.2122"), "liquidation")
    # Nothing changes by 2025-02-20 (the same quotes, 10 days old, still fresh): the call
    # has expired (due 02-19 < 02-20).
    counts = _mark(db, date(2025, 2, 20))
    assert counts["margin_calls_expired"] == 1
    call = db(lambda s: s.scalar(select(MarginCall).where(MarginCall.pledge_id == p.id)))
    assert (call.status, call.closed_on) == ("expired", date(2025, 2, 20))
    assert "margin_call_expired" in [k for k, _ in _events(db, p.id)]


def test_one_live_pledge_per_imei_enforced_by_the_database(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _setup(db)
    _quotes(db, date(2025, 1, 12), "3000", "3100", "3200")
    imei = iphone13_imei(3)
    first = _pledge(db, _loan(db, code), imei).pledge
    with pytest.raises(Conflict) as err:
        _pledge(db, _loan(db, code), imei)
    assert (err.value.field, err.value.rule) == ("imei", "one-live-pledge")

    def raw_insert(s: Session) -> None:  # bypass the service: the unique index still refuses
        row = s.get(Pledge, first.id)
        assert row is not None
        clone = {c.key: getattr(row, c.key) for c in Pledge.__table__.columns if c.key != "id"}
        s.add(Pledge(**clone))
        s.flush()

    with pytest.raises(IntegrityError):
        db(raw_insert)
    # Released, the IMEI may back a new loan.
    db(lambda s: pledges.release(s, s.get(Pledge, first.id), on=date(2025, 1, 15), now=NOW,
                                 why="test"))  # fmt: skip
    assert _pledge(db, _loan(db, code), imei).pledge.status == "active"


def test_bad_pledges_are_refused_with_the_field_named(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _setup(db)
    _quotes(db, date(2025, 1, 12), "3000", "3100", "3200")
    loan_id = _loan(db, code)
    good = iphone13_imei(4)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)  # a wrong check digit
    with pytest.raises(ValidationFailed) as err:
        _pledge(db, loan_id, bad)
    assert (err.value.field, err.value.rule) == ("imei", "imei-checksum")
    # A real iPhone 11 TAC (35657310) under the iPhone 13 model: tac-mismatch.
    with pytest.raises(ValidationFailed) as err:
        db(
            lambda s: pledges.register(
                s,
                loan_id=loan_id,
                imei=luhn_imei("35657310000001"),
                storage_gb=128,
                condition=GOOD,
                custody_mode="pawn",
                location="Store",
                model_key="apple-iphone-13",
                business_date=date(2025, 1, 15),
                now=NOW,
            )
        )
    assert (err.value.field, err.value.rule) == ("imei", "tac-mismatch")
    # 2200 is more than the lending value 2137.76 (first test): refused.
    with pytest.raises(ValidationFailed) as err:
        _pledge(db, _loan(db, code, principal="2200"), iphone13_imei(5))
    assert (err.value.field, err.value.rule) == ("principal", "within-lending-value")
    with pytest.raises(ValidationFailed) as err:
        db(
            lambda s: pledges.register(
                s,
                loan_id=loan_id,
                imei=iphone13_imei(6),
                storage_gb=128,
                condition=GOOD,
                custody_mode="pawn",
                business_date=date(2025, 1, 15),
                now=NOW,
            )
        )
    assert err.value.field == "location"
    assert db(lambda s: s.scalar(select(Pledge.id).where(Pledge.loan_id == loan_id))) is None


def _forfeit_and_sell(db_url: str, proceeds: str) -> tuple[Db, int, pledges.Liquidation]:
    """A 0% loan of 2000 in 12 equal principal parts (166.67 x 11, then 166.63)."""
    db = Db(db_url)
    code = _setup(db, rate="0", schedule="equal_principal")
    _quotes(db, date(2025, 1, 12), "3000", "3100", "3200")
    loan_id = _loan(db, code)
    p = _pledge(db, loan_id, iphone13_imei(7 if proceeds == "2100" else 8)).pledge
    db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 15)))
    with pytest.raises(Conflict):  # current loan, LTV ok: nothing to forfeit
        db(lambda s: pledges.forfeit(s, pledge_id=p.id, business_date=date(2025, 2, 1), now=NOW,
                                     actor="ops", reason="test"))  # fmt: skip
    # Installments due 02-15 and 03-15 unpaid: 33 days past due on 2025-03-20.
    db(lambda s: pledges.forfeit(s, pledge_id=p.id, business_date=date(2025, 3, 20), now=NOW,
                                 actor="ops", reason="two installments missed"))  # fmt: skip
    sold = db(
        lambda s: pledges.liquidate(
            s,
            pledge_id=p.id,
            proceeds=D(proceeds),
            sold_on=date(2025, 3, 20),
            business_date=date(2025, 3, 20),
            now=NOW,
            actor="ops",
            buyer="Recycler A",
        )
    )
    return db, loan_id, sold


def test_liquidation_with_a_surplus_owed_to_the_borrower(isolated_db_url: str) -> None:
    # Payoff on 2025-03-20: due 166.67 + 166.67 = 333.34, future principal 1666.66, no
    # interest: 2000.00. Proceeds 2100.00: 2000.00 applied, 100.00 surplus, nothing left.
    db, loan_id, sold = _forfeit_and_sell(isolated_db_url, "2100")
    assert (sold.applied, sold.surplus, sold.remaining) == (D("2000.00"), D("100.00"), D("0"))
    assert sold.pledge.status == "liquidated"
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("0.00")
    assert bal[Account.SUSPENSE] == D("-100.00")  # held for the borrower, refundable
    assert bal[Account.CASH] == D("100.00")  # -2000 paid out, +2100 received
    assert db(lambda s: loans.get_loan(s, loan_id).status) == "closed"


def test_liquidation_shortfall_stays_owed(isolated_db_url: str) -> None:
    # Proceeds 1500.00: 333.34 settles what is due, 1166.66 buys principal ahead; the
    # remaining principal 1666.66 - 1166.66 = 500.00 stays owed on the loan.
    db, loan_id, sold = _forfeit_and_sell(isolated_db_url, "1500")
    assert (sold.applied, sold.surplus, sold.remaining) == (D("1500.00"), D("0.00"), D("500.00"))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("500.00")
    assert bal[Account.CASH] == D("-500.00")
    assert db(lambda s: loans.get_loan(s, loan_id).status) == "active"


def test_payoff_releases_the_pledge_at_once(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _setup(db, rate="0", schedule="equal_principal")
    _quotes(db, date(2025, 1, 12), "3000", "3100", "3200")
    loan_id = _loan(db, code)
    p = _pledge(db, loan_id, iphone13_imei(9)).pledge
    db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=date(2025, 1, 15)))
    db(lambda s: loans.prepay(s, loan_id=loan_id, value_date=date(2025, 1, 20),
                              business_date=date(2025, 1, 20), now=NOW))  # fmt: skip
    row = db(lambda s: s.get(Pledge, p.id))
    assert (row.status, row.closed_on) == ("released", date(2025, 1, 20))
    assert _events(db, p.id)[-1] == ("released", {"reason": "loan repaid"})
