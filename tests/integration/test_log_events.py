"""Business events land in the transparency log in the transaction that makes them.

Disbursement, repayment, write-off and pledge events become pending leaves when their change
commits (never when it rolls back); a leaf holds ids and a SHA-256 that the test recomputes
from the ledger entry itself with the documented canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from mobilend.collateral import catalog, grading, pledges, prices
from mobilend.collateral import service as collateral
from mobilend.core.errors import Conflict
from mobilend.ledger.models import JournalEntry
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.trust import log
from mobilend.trust.models import LogEntry, PendingEntry
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration
D = Decimal
NOW = datetime(2025, 1, 15, 4, tzinfo=UTC)


def _imei(first14: str) -> str:
    total = 0
    for i, ch in enumerate(first14):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return first14 + str((10 - total % 10) % 10)


def test_ledger_and_pledge_events_are_logged_with_recomputable_digests(
    isolated_db_url: str,
) -> None:
    db = Db(isolated_db_url)
    code = f"L{uuid.uuid4().hex[:8]}"
    db(lambda s: loans.create_product(s, ProductIn(code=code, name="x", config=ProductConfig())))
    loan = db(
        lambda s: loans.create_loan(
            s,
            LoanIn(product_code=code, principal=D("1000"), periods=3, start_date=date(2025, 1, 15)),
        )
    )
    db(lambda s: collateral.import_catalog(s, catalog.seed_catalog()))
    quotes = [
        prices.PriceQuote("apple-iphone-13", 128, "mint", D(p), date(2025, 1, 14), src)
        for p, src in (("3000", "a"), ("3100", "b"), ("3200", "c"))
    ]
    db(lambda s: collateral.import_quotes(s, quotes, now=NOW))
    pledge = db(
        lambda s: pledges.register(
            s,
            loan_id=loan.id,
            imei=_imei("35104463000042"),
            storage_gb=128,
            condition=grading.Condition("flawless", "flawless", 95),
            custody_mode="pawn",
            location="Store",
            business_date=date(2025, 1, 15),
            now=NOW,
        )
    ).pledge
    db(lambda s: loans.disburse(s, loan_id=loan.id, value_date=date(2025, 1, 15)))

    def failing_repayment(s):  # type: ignore[no-untyped-def]
        loans.repay(
            s,
            loan_id=loan.id,
            amount=D("50"),
            value_date=date(2025, 1, 20),
            business_date=date(2025, 1, 20),
        )
        raise Conflict("the caller changed its mind")

    with pytest.raises(Conflict):
        db(failing_repayment)
    db(
        lambda s: loans.repay(
            s,
            loan_id=loan.id,
            amount=D("340.02"),
            value_date=date(2025, 2, 15),
            business_date=date(2025, 2, 15),
        )
    )
    db(lambda s: loans.accrue(s, loan_id=loan.id, through=date(2025, 2, 20)))  # not logged

    pending = db(
        lambda s: [
            (p.kind, json.loads(p.leaf_input))
            for p in s.scalars(select(PendingEntry).order_by(PendingEntry.id))
        ]
    )
    assert [k for k, _ in pending] == ["pledge_registered", "disbursement", "repayment"]
    assert pending[0][1]["refs"] == {"pledge_id": pledge.id, "loan_id": loan.id}

    # Recompute the repayment leaf's digest from the entry, as an outsider would.
    leaf = pending[2][1]
    entry = db(lambda s: s.get(JournalEntry, leaf["refs"]["entry_id"]))
    lines = sorted([ln.account, ln.loan_id, str(ln.amount)] for ln in entry.lines)
    body = {
        "id": entry.id,
        "kind": "repayment",
        "loan_id": loan.id,
        "business_date": "2025-02-15",
        "currency": "CNY",
        "lines": lines,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert leaf["digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert set(leaf) == {"v", "kind", "refs", "digest", "at"}  # ids and a hash, nothing else

    appended = db(lambda s: log.append_pending(s, now=NOW))
    assert appended == 3
    assert db(
        lambda s: [e.kind for e in s.scalars(select(LogEntry).order_by(LogEntry.leaf_index))]
    ) == ["pledge_registered", "disbursement", "repayment"]
