"""What goes into the transparency log from the ledger and decisions, in the same transaction.

Installed on every session factory (`db.session.session_factory`): after each flush the new
journal entries of the logged kinds and the new decision records are noted; just before the
transaction commits, one pending leaf is recorded for each (`trust.log.record`), so a leaf
exists exactly when its change commits. Pledge events and device commands record their own
leaves (collateral.pledges.record, collateral.devices); contract signatures, the contract
service.

A leaf holds ids and the SHA-256 of the record, never personal data:

- journal entry (kinds in LEDGER_KINDS): refs {entry_id, loan_id}; digest = SHA-256 of the
  canonical JSON of {"id", "kind", "loan_id", "business_date", "currency", "lines": [[account,
  loan_id, amount], ...] sorted} — anyone holding the entry (GET /v1/loans/{id}/entries) can
  recompute it;
- decision record: refs {application_id, decision_id}; digest = the record's own hash
  (`record_hash`, SHA-256 of its canonical JSON).

The leaf's time is the wall-clock UTC time the change committed (like a database's now()).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from mobilend.core.canonical import canonical_json
from mobilend.trust import log

LEDGER_KINDS = {
    "disbursement": "disbursement",
    "repayment": "repayment",
    "prepayment": "repayment",
    "recovery": "repayment",
    "reversal": "reversal",
    "write_off": "write_off",
    "refund": "refund",
}
_NOTED = "trust_log_noted"


def entry_digest(entry: Any) -> str:
    """SHA-256 (hex) of a journal entry's canonical JSON (see the module docstring)."""
    lines = sorted([line.account, line.loan_id, str(line.amount)] for line in entry.lines)
    currency = entry.lines[0].currency if entry.lines else ""
    body = {
        "id": entry.id,
        "kind": entry.kind,
        "loan_id": entry.loan_id,
        "business_date": entry.business_date.isoformat(),
        "currency": currency,
        "lines": lines,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _after_flush(session: Session, _context: Any) -> None:
    from mobilend.decisioning.models import DecisionRecord
    from mobilend.ledger.models import JournalEntry

    noted = session.info.setdefault(_NOTED, [])
    for obj in session.new:
        logged = isinstance(obj, JournalEntry) and obj.kind in LEDGER_KINDS
        if logged or isinstance(obj, DecisionRecord):
            noted.append(obj)


def _before_commit(session: Session) -> None:
    from mobilend.ledger.models import JournalEntry

    session.flush()
    noted = session.info.pop(_NOTED, [])
    at = datetime.now(UTC)
    for obj in noted:
        if not inspect(obj).persistent:  # inserted in a savepoint that was rolled back
            continue
        if isinstance(obj, JournalEntry):
            refs = {"entry_id": obj.id}
            if obj.loan_id is not None:
                refs["loan_id"] = obj.loan_id
            kind = LEDGER_KINDS[obj.kind]
            log.record(session, kind=kind, at=at, digest=entry_digest(obj), refs=refs)
        else:
            refs = {"application_id": obj.application_id, "decision_id": obj.id}
            log.record(session, kind="decision", at=at, digest=obj.record_hash, refs=refs)


def _after_soft_rollback(session: Session, previous: Any) -> None:
    if not previous.nested:  # the whole transaction is gone: nothing it noted will commit
        session.info.pop(_NOTED, None)


def install(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_soft_rollback", _after_soft_rollback)
