"""Who a message goes to, resolved when it is sent (not when it is enqueued).

An outbox row names a loan, never a phone number: the address is looked up and decrypted at
sending time, so a borrower who changed their number gets the message at the new one, and no
personal data sits in the outbox. The loan's borrower is the one its `borrower_ref` names
(`borrower:<id>[/...]`, as loans booked from an application are), else the application the
loan was booked from.

Addresses by channel: `sms` the borrower's phone (E.164); `push` the borrower's app user id
`borrower:<id>` (the push provider maps it to device tokens); `email` the borrower's e-mail
address, which origination does not collect yet (the `borrowers` table has no e-mail column):
until it does, e-mail messages fail with `no-recipient`. The borrower's time zone is the
record's own when origination adds one, else the configured default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.loans.models import Loan
from mobilend.origination.models import Borrower
from mobilend.origination.pii import PiiCipher, mask_phone

BORROWER_REF = re.compile(r"borrower:(\d+)(?:/|$)")


class Undeliverable(Exception):
    """The message cannot be sent to anyone (no loan, no borrower, no address): `rule` says
    why. Retrying does not help, so the relay fails it at once."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True, repr=False)
class Recipient:
    borrower_id: int
    address: str  # personal data: only for the channel adapter
    hint: str  # masked, kept on the outbox row: 139****0001
    timezone: str | None  # the borrower's own IANA zone, when the record has one

    def __repr__(self) -> str:
        return f"Recipient(borrower_id={self.borrower_id}, hint={self.hint!r})"


def borrower_of_loan(session: Session, loan_id: int) -> int | None:
    """The borrower's id: from the loan's borrower_ref, else from its application."""
    from mobilend.decisioning.models import Application

    ref = session.scalar(select(Loan.borrower_ref).where(Loan.id == loan_id))
    if ref is None:
        return None
    match = BORROWER_REF.match(ref)
    if match:
        return int(match.group(1))
    found = session.scalar(
        select(Application.borrower_id).where(Application.loan_id == loan_id).limit(1)
    )
    return int(found) if found is not None else None


def resolve(session: Session, *, loan_id: int | None, channel: str, cipher: PiiCipher) -> Recipient:
    """The recipient of a message about `loan_id` on `channel`; raises Undeliverable."""
    if loan_id is None:
        raise Undeliverable("no-recipient", "the message names no loan, so no borrower")
    borrower_id = borrower_of_loan(session, loan_id)
    if borrower_id is None:
        raise Undeliverable("no-recipient", f"loan {loan_id} names no borrower")
    row = session.get(Borrower, borrower_id)
    if row is None:
        raise Undeliverable("no-recipient", f"borrower {borrower_id} of loan {loan_id} is gone")
    zone = getattr(row, "timezone", None)  # a column origination may add
    if channel == "sms":
        # the same context origination seals it with (origination.service._ctx)
        phone = cipher.decrypt(row.phone_enc, context="borrowers.phone")
        return Recipient(borrower_id, phone, mask_phone(phone), zone)
    if channel == "push":
        return Recipient(borrower_id, f"borrower:{borrower_id}", f"borrower:{borrower_id}", zone)
    if channel == "email":
        sealed = getattr(row, "email_enc", None)  # not collected yet (see the module notes)
        if not sealed:
            raise Undeliverable("no-recipient", f"borrower {borrower_id} has no e-mail address")
        email = cipher.decrypt(sealed, context="borrowers.email")
        return Recipient(borrower_id, email, mask_email(email), zone)
    raise Undeliverable("unknown-channel", f"no channel {channel!r}")


def mask_email(value: str) -> str:
    """z***@example.com: the first character of the local part and the domain."""
    local, at, domain = value.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
