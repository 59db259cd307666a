"""The database itself refuses unbalanced or edited journal entries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mobilend.ledger.accounts import Account
from mobilend.ledger.service import Line, UnbalancedEntry, post_entry
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration


def _entry(db: Db) -> int:
    entry = db(
        lambda s: post_entry(
            s,
            kind="test",
            business_date=date(2025, 1, 1),
            currency="CNY",
            lines=[Line(Account.CASH, Decimal("5.00")), Line(Account.FEE_INCOME, Decimal("-5.00"))],
        )
    )
    assert entry is not None
    return entry.id


def test_code_refuses_unbalanced_entries(db_url: str) -> None:
    db = Db(db_url)
    with pytest.raises(UnbalancedEntry):
        db(
            lambda s: post_entry(
                s,
                kind="test",
                business_date=date(2025, 1, 1),
                currency="CNY",
                lines=[
                    Line(Account.CASH, Decimal("5.00")),
                    Line(Account.FEE_INCOME, Decimal("-4.99")),
                ],
            )
        )
    with pytest.raises(UnbalancedEntry):  # sub-cent amounts are not postable
        db(
            lambda s: post_entry(
                s,
                kind="test",
                business_date=date(2025, 1, 1),
                currency="CNY",
                lines=[
                    Line(Account.CASH, Decimal("0.001")),
                    Line(Account.FEE_INCOME, Decimal("-0.001")),
                ],
            )
        )


def test_journal_is_append_only(db_url: str) -> None:
    db = Db(db_url)
    entry_id = _entry(db)
    with pytest.raises(DBAPIError):
        db(
            lambda s: s.execute(
                text("UPDATE journal_lines SET amount = 6 WHERE entry_id = :e"), {"e": entry_id}
            )
        )
    with pytest.raises(DBAPIError):
        db(
            lambda s: s.execute(
                text("DELETE FROM journal_lines WHERE entry_id = :e"), {"e": entry_id}
            )
        )
    with pytest.raises(DBAPIError):
        db(lambda s: s.execute(text("DELETE FROM journal_entries WHERE id = :e"), {"e": entry_id}))


@pytest.mark.pg
def test_postgres_deferred_trigger_refuses_unbalanced_commit(pg_server: str) -> None:
    db = Db(pg_server)
    entry_id = _entry(db)

    def sneak(session) -> None:  # type: ignore[no-untyped-def]
        session.execute(
            text(
                "INSERT INTO journal_lines (entry_id, account, currency, amount)"
                " VALUES (:e, 'cash', 'CNY', 1.00)"
            ),
            {"e": entry_id},
        )

    with pytest.raises(DBAPIError, match="does not balance"):
        db(sneak)
    total = db(
        lambda s: s.execute(
            text("SELECT SUM(amount) FROM journal_lines WHERE entry_id = :e"), {"e": entry_id}
        ).scalar()
    )
    assert total == 0
