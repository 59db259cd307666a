"""Helpers for integration tests: a unit-of-work runner and ledger consistency checks."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.db.session import engine_for, session_factory, unit_of_work
from mobilend.ledger.accounts import Account
from mobilend.ledger.models import JournalLine
from mobilend.ledger.service import loan_balances
from mobilend.loans.models import Loan
from mobilend.loans.statement import subledger_totals

T = TypeVar("T")


class Db:
    """Runs each call in its own unit of work, as a request would."""

    def __init__(self, url: str) -> None:
        self.factory = session_factory(engine_for(url))

    def __call__(self, fn: Callable[[Session], T]) -> T:
        with unit_of_work(self.factory) as session:
            return fn(session)


def check_loan_consistent(session: Session, loan_id: int) -> dict[Account, Decimal]:
    """Every entry of the loan balances, and the ledger's receivables equal the sub-ledger's."""
    per_entry = session.execute(
        select(JournalLine.entry_id, func.sum(JournalLine.amount))
        .where(JournalLine.loan_id == loan_id)
        .group_by(JournalLine.entry_id)
    ).all()
    assert all(Decimal(total).quantize(Decimal("0.01")) == 0 for _, total in per_entry)
    balances = loan_balances(session, loan_id)
    loan = session.get(Loan, loan_id)
    assert loan is not None
    if loan.status in ("active", "closed"):
        for account, amount in subledger_totals(loan).items():
            assert balances[account] == amount, (account, balances[account], amount)
    return balances


def d(text: str) -> Decimal:
    return Decimal(text)


def dump(value: Any) -> Any:
    return value
