"""The set-based mark-to-market (PostgreSQL SQL) agrees exactly with the Decimal path.

Sixty pledges over two products (one with its own thresholds), several models, grades and
carrier locks (half-cent ties in value x 0.85), loans with accrued interest and partial
repayments; three business dates with prices falling and recovering, so statuses change,
margin calls open, are cured and expire. On each date both paths start from the same state
(the Decimal one is rolled back): pledges, margin calls and events must be identical.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.collateral import catalog, grading, marking, pledges, prices, service
from mobilend.collateral.models import CollateralEvent, MarginCall, Pledge
from mobilend.db.session import engine_for, session_factory
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.notify.models import OutboxMessage
from tests.integration.helpers import Db

D = Decimal
pytestmark = pytest.mark.integration
NOW = datetime(2025, 3, 1, tzinfo=UTC)
SERIES = [("apple-iphone-13", 128), ("apple-iphone-13", 256), ("xiaomi-13", 256)]
CONDITIONS = [
    grading.Condition(screen="flawless", body="flawless", battery_health_pct=95),  # mint
    grading.Condition(screen="visible_wear", body="flawless", battery_health_pct=95),  # good
    grading.Condition(
        screen="minor_wear", body="flawless", battery_health_pct=95, carrier_locked=True
    ),  # excellent, x 0.85
]


def _imei(n: int, model: str) -> str:
    body = f"35104463{n:06d}" if model == "apple-iphone-13" else f"86000000{n:06d}"
    total = sum(
        (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
        for i, d in enumerate(int(c) for c in body)
    )
    return body + str((10 - total % 10) % 10)


def _quotes(db: Db, day: date, level: Decimal, rng: random.Random) -> None:
    quotes = []
    for model, storage in SERIES:
        for grade in ("mint", "good", "excellent"):
            for n in range(3):
                cents = int(level * 100) + rng.randrange(-3000, 3000)
                base = {"apple-iphone-13": 1, "xiaomi-13": D("0.7")}[model] * (
                    D(1) if storage == 128 else D("1.1")
                )
                price = (D(cents) / 100 * base).quantize(D("0.01")) + D("0.05")  # odd cents
                quotes.append(prices.PriceQuote(model, storage, grade, price, day, f"s{n}"))
    db(lambda s: service.import_quotes(s, quotes, now=NOW))


def _book(db: Db, rng: random.Random) -> None:
    db(lambda s: service.import_catalog(s, catalog.seed_catalog()))
    codes = []
    for _ in range(2):
        code = f"A{uuid.uuid4().hex[:8]}"
        db(
            lambda s, c=code: loans.create_product(
                s, ProductIn(code=c, name="x", config=ProductConfig(annual_rate_pct=D("18")))
            )
        )
        codes.append(code)
    db(
        lambda s: service.set_terms(
            s,
            product_code=codes[1],
            data={
                "haircut": D("0.10"),
                "max_ltv": D("0.55"),
                "warning_ltv": D("0.65"),
                "margin_call_ltv": D("0.75"),
                "liquidation_ltv": D("0.90"),
                "margin_call_days": 3,
            },
        )
    )
    _quotes(db, date(2025, 1, 14), D("3000"), rng)
    for n in range(60):
        model, storage = SERIES[n % 3]
        code = codes[n % 2]
        principal = D(rng.randrange(50_000, 100_000)) / 100
        loan = db(
            lambda s, c=code, p=principal: loans.create_loan(
                s, LoanIn(product_code=c, principal=p, periods=6, start_date=date(2025, 1, 15))
            )
        )
        db(
            lambda s, lid=loan.id, m=model, st=storage, k=n: pledges.register(
                s,
                loan_id=lid,
                imei=_imei(k + 1, m),
                storage_gb=st,
                condition=CONDITIONS[k % 3],
                custody_mode="pawn",
                location="Store",
                business_date=date(2025, 1, 15),
                now=NOW,
                model_key=m,
            )
        )
        db(lambda s, lid=loan.id: loans.disburse(s, loan_id=lid, value_date=date(2025, 1, 15)))
        db(lambda s, lid=loan.id: loans.accrue(s, loan_id=lid, through=date(2025, 2, 20)))
        if n % 4 == 0:
            amount = D(rng.randrange(1_000, 40_000)) / 100
            db(
                lambda s, lid=loan.id, a=amount: loans.repay(
                    s,
                    loan_id=lid,
                    amount=a,
                    value_date=date(2025, 2, 20),
                    business_date=date(2025, 2, 20),
                )
            )


def _snapshot(s: Session) -> dict[str, Any]:
    return {
        "pledges": [
            (p.id, p.current_value, p.outstanding, p.ltv, p.ltv_status, p.shortfall, p.marked_on)
            for p in s.scalars(select(Pledge).order_by(Pledge.id))
        ],
        "calls": [
            (
                c.pledge_id,
                c.opened_on,
                c.due_on,
                c.ltv,
                c.shortfall,
                c.prepayment_to_cure,
                c.status,
                c.closed_on,
            )
            for c in s.scalars(select(MarginCall).order_by(MarginCall.pledge_id, MarginCall.id))
        ],
        "outbox": sorted(
            (m.dedupe_key, m.topic, m.loan_id, m.language, sorted(m.params.items()))
            for m in s.scalars(select(OutboxMessage))
        ),
        "events": sorted(
            (e.pledge_id, e.kind, e.business_date, sorted(e.detail.items()))
            for e in s.scalars(select(CollateralEvent).where(CollateralEvent.kind != "registered"))
        ),
    }


def _run(url: str, day: date, method: str, *, keep: bool) -> dict[str, Any]:
    session = session_factory(engine_for(url))()
    try:
        counts = marking.mark_all(session, on=day, now=NOW, method=method)
        session.flush()
        session.expire_all()
        snap = _snapshot(session) | {"counts": counts}
        if keep:
            session.commit()
        return snap
    finally:
        session.rollback()
        session.close()


def test_sql_and_decimal_marks_agree(isolated_pg_url: str) -> None:
    rng = random.Random(7)
    db = Db(isolated_pg_url)
    _book(db, rng)
    statuses: set[str] = set()
    for day, level in (
        (date(2025, 2, 21), D("2300")),
        (date(2025, 2, 24), D("900")),
        (date(2025, 3, 1), D("1900")),
    ):
        _quotes(db, day - timedelta(days=1), level, rng)  # two days of quotes: the median
        _quotes(db, day, level, rng)  # moves to the new level
        by_decimal = _run(isolated_pg_url, day, "decimal", keep=False)
        by_sql = _run(isolated_pg_url, day, "sql", keep=True)
        assert by_sql["pledges"] == by_decimal["pledges"]
        assert by_sql["calls"] == by_decimal["calls"]
        assert by_sql["events"] == by_decimal["events"]
        assert by_sql["outbox"] == by_decimal["outbox"]
        statuses |= {row[4] for row in by_sql["pledges"]}
    # the dates above really exercised every status and every margin-call outcome
    assert statuses == {"ok", "warning", "margin_call", "liquidation"}
    final = _run(isolated_pg_url, date(2025, 3, 1), "sql", keep=False)
    assert {c[6] for c in final["calls"]} >= {"cured", "expired"}
    topics = {m[1] for m in final["outbox"]}
    assert topics == {
        "collateral.margin_call",
        "collateral.margin_call_cured",
        "collateral.margin_call_expired",
    }
