"""Contacts of a loan and the collection actions made to them, under the conduct rules.

A loan's contacts are the borrower's own phone numbers, e-mails and addresses and the related
parties the borrower named (emergency contacts: spouse, parent, ...). An unrelated third party
is never a contact: registering one is refused, and an attempt to reach a number or address
that is not among the loan's contacts is checked as a third-party contact, which the conduct
rules refuse (`no-third-party`).

`record_action` checks an attempt with `conduct.check_contact`: the contact's time zone, its
relation and consent, the case's do-not-contact flag, the borrower's registered addresses, and
the attempts already made to the same contact point (by its blind index, across all loans) in
that local day, against the product's `max_contacts_per_day`. A refused attempt raises
`ConductViolation` (422, naming the rule) and stores no action; the caller logs it with
`log_refusal` in its own unit of work, so refused attempts are kept for supervision but never
count as attempts made.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mobilend.collections.conduct import (
    ConductRules,
    ConductViolation,
    ContactAttempt,
    ContactRecord,
    check_contact,
)
from mobilend.collections.models import (
    CollectionAction,
    CollectionContact,
    CollectionRefusal,
)
from mobilend.collections.service import get_agent, get_case, policy_of, require_open
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.db.session import is_postgres
from mobilend.loans.models import Loan
from mobilend.origination import pii
from mobilend.origination.validation import normalize_phone

DEFAULT_TIMEZONE = "Asia/Shanghai"
KINDS = ("phone", "email", "address")
RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "relative", "friend", "colleague", "other")
OUTCOMES = (
    "answered",
    "no_answer",
    "busy",
    "wrong_number",
    "left_message",
    "sent",
    "met",
    "not_home",
    "promise_to_pay",
    "refused_to_pay",
    "disputed",
)
HISTORY_WINDOW = timedelta(days=2)  # covers any local day around the attempt


# ---------------------------------------------------------------- contacts


def normalize_value(kind: str, value: str) -> str:
    """The canonical text of a phone number (E.164), e-mail or address."""
    if kind not in KINDS:
        raise ValidationFailed("kind", "one-of", f"kind is one of {KINDS}")
    text = value.strip()
    if kind == "phone":
        return normalize_phone(text, mobile_only=False, field="value")
    if kind == "email" and (text.count("@") != 1 or text.startswith("@") or text.endswith("@")):
        raise ValidationFailed("value", "email", "not an e-mail address")
    if not text or len(text) > 300:
        raise ValidationFailed("value", "length", f"a {kind} is 1-300 characters")
    return text.lower() if kind == "email" else text


def contact_point_of(cipher: pii.PiiCipher, kind: str, value: str) -> str:
    """The blind index attempts are counted by (the same index for the same number)."""
    return cipher.blind_index(normalize_value(kind, value), context=kind)


def _mask(kind: str, value: str) -> str:
    if kind == "phone":
        return pii.mask_phone(value)
    if kind == "address":
        return pii.mask_address(value)
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def add_contact(
    session: Session,
    *,
    loan_id: int,
    relation: str,
    kind: str,
    value: str,
    timezone: str,
    cipher: pii.PiiCipher,
    business_date: date,
    relationship: str = "self",
    consented_at: datetime | None = None,
) -> CollectionContact:
    """Register one of the borrower's contact points, or a party the borrower named."""
    if session.get(Loan, loan_id) is None:
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    if relation == "third_party":
        raise ValidationFailed(
            "relation", "no-third-party", "an unrelated third party is never a collection contact"
        )
    if relation not in ("borrower", "emergency_contact"):
        raise ValidationFailed("relation", "one-of", "relation is borrower or emergency_contact")
    if relation == "borrower":
        relationship = "self"
    elif relationship not in RELATIONSHIPS:
        raise ValidationFailed("relationship", "one-of", f"relationship is one of {RELATIONSHIPS}")
    if consented_at is not None and consented_at.tzinfo is None:
        raise ValidationFailed("consented_at", "aware", "consented_at needs a time zone")
    _check_zone(timezone)
    text = normalize_value(kind, value)
    point = cipher.blind_index(text, context=kind)
    taken = session.scalar(
        select(CollectionContact.id).where(
            CollectionContact.loan_id == loan_id, CollectionContact.contact_point == point
        )
    )
    if taken is not None:
        raise Conflict(f"the loan already has this {kind}", field="value", rule="duplicate")
    contact = CollectionContact(
        loan_id=loan_id,
        relation=relation,
        relationship=relationship,
        kind=kind,
        contact_point=point,
        value_enc=cipher.encrypt(text, context=f"collection_contacts.{kind}"),
        masked=_mask(kind, text)[:64],
        timezone=timezone,
        consented_at=consented_at,
        added_on=business_date,
    )
    session.add(contact)
    session.flush()
    return contact


def contacts_of(session: Session, loan_id: int) -> list[CollectionContact]:
    return list(
        session.scalars(
            select(CollectionContact)
            .where(CollectionContact.loan_id == loan_id)
            .order_by(CollectionContact.id)
        )
    )


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed("timezone", "iana-zone", f"unknown time zone {name!r}") from None


# ---------------------------------------------------------------- actions


def record_action(
    session: Session,
    *,
    case_id: int,
    agent_id: int,
    channel: str,
    at: datetime,
    now: datetime,
    outcome: str,
    contact_id: int | None = None,
    contact_point: str | None = None,
    purpose: str = "collect",
    note: str = "",
) -> CollectionAction:
    """Record a contact made at `at`, or raise ConductViolation naming the rule it breaks.

    The contact is a registered contact (`contact_id`) or, by `contact_point` (a blind index),
    whoever it belongs to: a registered contact of the loan if it matches one, else an
    unrelated third party.
    """
    if at.tzinfo is None:
        raise ValidationFailed("at", "aware", "at needs a time zone")
    if at > now:
        raise ValidationFailed("at", "not-future", "an action is recorded once it is made")
    if outcome not in OUTCOMES:
        raise ValidationFailed("outcome", "one-of", f"outcome is one of {OUTCOMES}")
    case = get_case(session, case_id, lock=True)  # one attempt at a time per case
    require_open(case)
    agent = get_agent(session, agent_id)
    if not agent.active:
        raise Conflict(f"agent {agent_id} is inactive", field="agent_id", rule="agent-inactive")
    contacts = contacts_of(session, case.loan_id)
    contact = _resolve(contacts, contact_id, contact_point)
    point = contact.contact_point if contact else str(contact_point)
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    attempt = ContactAttempt(
        at=at,
        borrower_timezone=contact.timezone if contact else _borrower_zone(contacts),
        channel=channel,
        contact_point=point,
        relation=contact.relation if contact else "third_party",
        purpose=purpose,
        contact_consented=bool(contact and contact.consented_at and contact.consented_at <= at),
        do_not_contact=case.do_not_contact,
        registered_addresses=frozenset(
            c.contact_point for c in contacts if c.relation == "borrower" and c.kind == "address"
        ),
    )
    rules = ConductRules(max_attempts_per_day=policy_of(session, loan).max_contacts_per_day)
    if is_postgres(session):  # one attempt at a time per contact point, whichever case it is on
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('mobilend.contact.' || :p))"), {"p": point}
        )
    check_contact(attempt, history=_history(session, point, at), rules=rules)
    action = CollectionAction(
        case_id=case.id,
        loan_id=case.loan_id,
        agent_id=agent_id,
        contact_id=contact.id if contact else None,
        contact_point=point,
        relation=attempt.relation,
        purpose=purpose,
        channel=channel,
        at=at,
        outcome=outcome,
        note=note[:500],
    )
    session.add(action)
    session.flush()
    return action


def _resolve(
    contacts: list[CollectionContact], contact_id: int | None, contact_point: str | None
) -> CollectionContact | None:
    if (contact_id is None) == (contact_point is None):
        raise ValidationFailed(
            "contact_id", "one-of", "give the contact_id or the contact_point (not both)"
        )
    if contact_id is not None:
        found = next((c for c in contacts if c.id == contact_id), None)
        if found is None:
            raise NotFound(f"contact {contact_id} is not one of the loan's", field="contact_id")
        return found
    return next((c for c in contacts if c.contact_point == contact_point), None)


def _borrower_zone(contacts: list[CollectionContact]) -> str:
    own = [c for c in contacts if c.relation == "borrower"]
    return own[0].timezone if own else DEFAULT_TIMEZONE


def _history(session: Session, point: str, at: datetime) -> list[ContactRecord]:
    rows = session.execute(
        select(CollectionAction.at, CollectionAction.channel).where(
            CollectionAction.contact_point == point,
            CollectionAction.at >= at - HISTORY_WINDOW,
            CollectionAction.at <= at + HISTORY_WINDOW,
        )
    ).all()
    return [ContactRecord(at=when, contact_point=point, channel=channel) for when, channel in rows]


def log_refusal(
    session: Session,
    *,
    case_id: int,
    violation: ConductViolation,
    channel: str,
    at: datetime,
    agent_id: int | None = None,
    contact_id: int | None = None,
    contact_point: str | None = None,
) -> CollectionRefusal:
    """Keep a refused attempt (its rule and why) for supervision; it is not an action."""
    if contact_point is None and contact_id is not None:
        contact = session.get(CollectionContact, contact_id)
        contact_point = contact.contact_point if contact else None
    refusal = CollectionRefusal(
        case_id=case_id,
        agent_id=agent_id,
        contact_id=contact_id,
        contact_point=(contact_point or "")[:64],
        channel=channel[:16],
        at=at,
        rule=str(violation.rule)[:40],
        field=violation.field,
        detail=violation.detail[:300],
    )
    session.add(refusal)
    session.flush()
    return refusal


def actions_of(session: Session, case_id: int) -> list[CollectionAction]:
    return list(
        session.scalars(
            select(CollectionAction)
            .where(CollectionAction.case_id == case_id)
            .order_by(CollectionAction.at, CollectionAction.id)
        )
    )


def refusals_of(session: Session, case_id: int) -> list[CollectionRefusal]:
    return list(
        session.scalars(
            select(CollectionRefusal)
            .where(CollectionRefusal.case_id == case_id)
            .order_by(CollectionRefusal.id)
        )
    )
