"""Post balanced entries, reverse them, read balances. Never commits (the caller's unit of work)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.core.errors import Conflict, NotFound
from mobilend.core.money import ZERO
from mobilend.ledger.accounts import Account
from mobilend.ledger.models import JournalEntry, JournalLine


class UnbalancedEntry(Exception):
    """Raised before anything is written when debits and credits differ."""


@dataclass(frozen=True, slots=True)
class Line:
    account: Account
    amount: Decimal  # debit > 0, credit < 0
    loan_id: int | None = None


def check_balanced(lines: Sequence[Line], currency: str) -> None:
    total = sum((line.amount for line in lines), ZERO)
    if total != 0:
        raise UnbalancedEntry(f"entry does not balance in {currency}: off by {total}")
    for line in lines:
        if line.amount != line.amount.quantize(Decimal("0.01")):
            raise UnbalancedEntry(f"line amount {line.amount} is not in minor units")


def post_entry(
    session: Session,
    *,
    kind: str,
    business_date: date,
    currency: str,
    lines: Iterable[Line],
    loan_id: int | None = None,
    description: str = "",
    reverses_id: int | None = None,
) -> JournalEntry | None:
    """Post one balanced entry; zero lines are dropped; returns None when nothing is left."""
    merged: dict[tuple[Account, int | None], Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        merged[(line.account, line.loan_id)] += line.amount
    kept = [Line(acc, amt, lid) for (acc, lid), amt in merged.items() if amt != 0]
    check_balanced(kept, currency)
    if not kept:
        return None
    entry = JournalEntry(
        loan_id=loan_id,
        kind=kind,
        business_date=business_date,
        description=description[:200],
        reverses_id=reverses_id,
    )
    entry.lines = [
        JournalLine(
            account=line.account.value, loan_id=line.loan_id, currency=currency, amount=line.amount
        )
        for line in kept
    ]
    session.add(entry)  # inserted at the next flush, with its lines, in one batch
    return entry


def reverse_entry(
    session: Session, entry_id: int, *, business_date: date, kind: str, reason: str = ""
) -> JournalEntry:
    """Post the exact negation of an entry. An entry can be reversed once."""
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise NotFound(f"journal entry {entry_id} not found", field="entry_id")
    already = session.scalar(select(JournalEntry.id).where(JournalEntry.reverses_id == entry_id))
    if already is not None:
        raise Conflict(f"journal entry {entry_id} is already reversed", field="entry_id")
    currency = original.lines[0].currency
    reversal = post_entry(
        session,
        kind=kind,
        business_date=business_date,
        currency=currency,
        loan_id=original.loan_id,
        description=f"reversal of entry {entry_id}: {reason}"
        if reason
        else f"reversal of entry {entry_id}",
        reverses_id=entry_id,
        lines=[Line(Account(ln.account), -ln.amount, ln.loan_id) for ln in original.lines],
    )
    assert reversal is not None
    return reversal


def loan_balances(session: Session, loan_id: int) -> dict[Account, Decimal]:
    """Balance of every account for one loan (debit-positive), derived from journal lines."""
    rows = session.execute(
        select(JournalLine.account, func.coalesce(func.sum(JournalLine.amount), 0))
        .where(JournalLine.loan_id == loan_id)
        .group_by(JournalLine.account)
    ).all()
    balances = dict.fromkeys(Account, Decimal("0.00"))
    for account, total in rows:
        balances[Account(account)] = Decimal(total).quantize(Decimal("0.01"))
    return balances


def trial_balance(session: Session) -> dict[tuple[str, str], Decimal]:
    """Sum of all lines per (account, currency); the grand total per currency is zero."""
    rows = session.execute(
        select(JournalLine.account, JournalLine.currency, func.sum(JournalLine.amount)).group_by(
            JournalLine.account, JournalLine.currency
        )
    ).all()
    return {(a, c): Decimal(t).quantize(Decimal("0.01")) for a, c, t in rows}
