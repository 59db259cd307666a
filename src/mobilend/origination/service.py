"""Borrower and consent use cases. Each takes the caller's session and never commits.

Personal fields are validated (validation.py), sealed with the active key and indexed with the
blind-index key (pii.py) before they reach the database; reads decrypt into a BorrowerRecord,
whose repr shows no personal data. Services take the time (`at`) or business date (`today`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.origination import validation as v
from mobilend.origination.models import Borrower, Consent
from mobilend.origination.pii import PiiCipher, load_cipher
from mobilend.origination.schemas import BorrowerIn, ConsentIn

if TYPE_CHECKING:
    from mobilend.settings import Settings

# Consent purposes and whether each needs a separate consent (PIPL art. 29: sensitive personal
# information; art. 23: provision to another handler). Others call require_consent with these.
CONSENT_PURPOSES: dict[str, bool] = {
    "credit_bureau": True,  # credit reports: financial accounts and credit history (art. 28)
    "scoring": True,  # automated decisions on financial data (art. 24)
    "device_data": True,  # device identifiers, location (whereabouts, art. 28)
    "social_commerce_data": True,  # a merchant's shop, orders and payment data
    "identity_verification": True,  # ID card images and face checks (biometrics, art. 28)
    "third_party_sharing": True,  # funders and co-lenders receive the data (art. 23)
    "marketing": False,  # offers by SMS, push or e-mail
}
NAME_MAX, ADDRESS_MAX = 100, 200


class ConsentRequired(Conflict):
    """No consent in force for one or more purposes; `missing` names them in request order."""

    type = "consent-required"
    title = "Consent required"

    def __init__(self, borrower_id: int, missing: Sequence[str]) -> None:
        super().__init__(
            f"borrower {borrower_id} has no consent in force for: {', '.join(missing)}",
            field="purpose",
            rule="consent-required",
        )
        self.borrower_id = borrower_id
        self.missing = list(missing)


@dataclass(frozen=True, repr=False)
class BorrowerRecord:
    """A borrower with its personal data decrypted. Mask before it leaves the process."""

    id: int
    kind: str
    name: str
    id_number: str  # the resident ID of a person, the USCC of a merchant
    phone: str  # E.164
    bank_card: str | None
    address: str | None
    birth_date: date | None
    gender: str | None
    region_code: str | None
    key_id: str
    created_at: datetime | None

    def __repr__(self) -> str:
        return f"BorrowerRecord(id={self.id}, kind={self.kind!r})"


def cipher_from_settings(settings: Settings) -> PiiCipher:
    keys = settings.pii_keys
    return load_cipher(
        keys={kid: key.get_secret_value() for kid, key in keys.items()} if keys else None,
        active_kid=settings.pii_active_key,
        index_key=settings.pii_index_key.get_secret_value() if settings.pii_index_key else None,
        data_dir=settings.data_dir,
    )


# ---------------------------------------------------------------- borrowers


def _ctx(field: str) -> str:
    return f"borrowers.{field}"


def register_borrower(
    session: Session,
    data: BorrowerIn,
    *,
    cipher: PiiCipher,
    today: date,
    min_age: int | None = 18,
    max_age: int | None = None,
) -> Borrower:
    """Validate, encrypt and store a borrower. A second borrower of the same kind with the same
    ID number (or USCC) is refused: Conflict naming the field, rule `duplicate`."""
    name = v.check_text(data.name, field="name", max_length=NAME_MAX)
    birth_date = gender = None
    if data.kind == "person":
        number_field = "id_number"
        if data.uscc is not None:
            raise ValidationFailed("uscc", "person", "a person has an id_number, not a uscc")
        if not data.id_number:
            raise ValidationFailed("id_number", "required", "a person needs an id_number")
        ident = v.parse_id_number(data.id_number, today=today)
        v.check_age(ident.birth_date, on=today, min_age=min_age, max_age=max_age)
        number, region = ident.number, ident.region_code
        birth_date, gender = ident.birth_date, ident.gender
    else:
        number_field = "uscc"
        if data.id_number is not None:
            raise ValidationFailed("id_number", "merchant", "a merchant has a uscc, not an id")
        if not data.uscc:
            raise ValidationFailed("uscc", "required", "a merchant needs a uscc")
        number = v.check_uscc(data.uscc)
        region = v.uscc_region(number)
    phone = v.normalize_phone(data.phone)
    card = v.check_bank_card(data.bank_card) if data.bank_card is not None else None
    address = (
        v.check_text(data.address, field="address", max_length=ADDRESS_MAX)
        if data.address is not None
        else None
    )
    id_index = cipher.blind_index(number, context="id_number")
    if _id_taken(session, data.kind, id_index):
        raise Conflict(
            f"this {number_field} is already registered", field=number_field, rule="duplicate"
        )
    borrower = Borrower(
        kind=data.kind,
        key_id=cipher.active_kid,
        name_enc=cipher.encrypt(name, context=_ctx("name")),
        id_number_enc=cipher.encrypt(number, context=_ctx("id_number")),
        id_number_index=id_index,
        phone_enc=cipher.encrypt(phone, context=_ctx("phone")),
        phone_index=cipher.blind_index(phone, context="phone"),
        bank_card_enc=cipher.encrypt(card, context=_ctx("bank_card")) if card else None,
        address_enc=cipher.encrypt(address, context=_ctx("address")) if address else None,
        birth_date=birth_date,
        gender=gender,
        region_code=region,
    )
    try:
        with session.begin_nested():  # a concurrent registration of the same number
            session.add(borrower)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"this {number_field} is already registered", field=number_field, rule="duplicate"
        ) from None
    return borrower


def _id_taken(session: Session, kind: str, id_index: str) -> bool:
    query = select(Borrower.id).where(Borrower.kind == kind, Borrower.id_number_index == id_index)
    return session.scalar(query) is not None


def _borrower(session: Session, borrower_id: int) -> Borrower:
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise NotFound(f"borrower {borrower_id} not found", field="borrower_id")
    return borrower


def decrypt_borrower(borrower: Borrower, *, cipher: PiiCipher) -> BorrowerRecord:
    def opt(token: str | None, field: str) -> str | None:
        return cipher.decrypt(token, context=_ctx(field)) if token is not None else None

    return BorrowerRecord(
        id=borrower.id,
        kind=borrower.kind,
        name=cipher.decrypt(borrower.name_enc, context=_ctx("name")),
        id_number=cipher.decrypt(borrower.id_number_enc, context=_ctx("id_number")),
        phone=cipher.decrypt(borrower.phone_enc, context=_ctx("phone")),
        bank_card=opt(borrower.bank_card_enc, "bank_card"),
        address=opt(borrower.address_enc, "address"),
        birth_date=borrower.birth_date,
        gender=borrower.gender,
        region_code=borrower.region_code,
        key_id=borrower.key_id,
        created_at=borrower.created_at,
    )


def get_borrower(session: Session, borrower_id: int, *, cipher: PiiCipher) -> BorrowerRecord:
    """The borrower with personal data decrypted (NotFound, field borrower_id)."""
    return decrypt_borrower(_borrower(session, borrower_id), cipher=cipher)


def find_by_id_number(
    session: Session, id_number: str, *, cipher: PiiCipher, kind: str = "person"
) -> BorrowerRecord | None:
    """Look a borrower up by resident ID (kind person) or USCC (kind merchant), via the index.
    A malformed number is a ValidationFailed, as on registration."""
    number = v.parse_id_number(id_number).number if kind == "person" else v.check_uscc(id_number)
    index = cipher.blind_index(number, context="id_number")
    borrower = session.scalar(
        select(Borrower).where(Borrower.kind == kind, Borrower.id_number_index == index)
    )
    return decrypt_borrower(borrower, cipher=cipher) if borrower is not None else None


def find_by_phone(session: Session, phone: str, *, cipher: PiiCipher) -> list[BorrowerRecord]:
    """Every borrower registered with this phone number (a shared phone is a fraud signal)."""
    index = cipher.blind_index(v.normalize_phone(phone, mobile_only=False), context="phone")
    rows = session.scalars(
        select(Borrower).where(Borrower.phone_index == index).order_by(Borrower.id)
    )
    return [decrypt_borrower(b, cipher=cipher) for b in rows]


# ---------------------------------------------------------------- key rotation


def rotate_borrower_keys(session: Session, borrower_id: int, *, cipher: PiiCipher) -> bool:
    """Re-seal a borrower's fields (and its consents' addresses) with the active key and
    recompute its blind indexes. Returns whether anything changed."""
    borrower = _borrower(session, borrower_id)
    changed = False
    for field in ("name", "id_number", "phone", "bank_card", "address"):
        token = getattr(borrower, f"{field}_enc")
        if token is not None:
            new = cipher.reencrypt(token, context=_ctx(field))
            if new != token:
                setattr(borrower, f"{field}_enc", new)
                changed = True
    record = decrypt_borrower(borrower, cipher=cipher)
    id_index = cipher.blind_index(record.id_number, context="id_number")
    phone_index = cipher.blind_index(record.phone, context="phone")
    if (borrower.id_number_index, borrower.phone_index) != (id_index, phone_index):
        borrower.id_number_index, borrower.phone_index = id_index, phone_index
        changed = True
    borrower.key_id = cipher.active_kid
    for consent in session.scalars(select(Consent).where(Consent.borrower_id == borrower_id)):
        if consent.ip_enc is not None:
            new = cipher.reencrypt(consent.ip_enc, context="consents.ip")
            if new != consent.ip_enc:
                consent.ip_enc = new
                changed = True
    session.flush()
    return changed


def rotate_keys(
    session: Session, *, cipher: PiiCipher, limit: int = 500, from_kid: str | None = None
) -> int:
    """Rotate up to `limit` borrowers not yet on the active key (only those sealed with
    `from_kid`, when given); returns how many. Run it in batches (one unit of work each) until
    it returns 0."""
    query = select(Borrower.id).where(Borrower.key_id != cipher.active_kid)
    if from_kid is not None:
        query = query.where(Borrower.key_id == from_kid)
    ids = session.scalars(query.order_by(Borrower.id).limit(limit)).all()
    for borrower_id in ids:
        rotate_borrower_keys(session, borrower_id, cipher=cipher)
    return len(ids)


# ---------------------------------------------------------------- consent


def _aware(at: datetime, field: str) -> datetime:
    if at.tzinfo is None:
        raise ValidationFailed(field, "timezone", f"{field} needs a timezone offset")
    return at


def record_consent(
    session: Session, borrower_id: int, data: ConsentIn, *, cipher: PiiCipher, at: datetime
) -> Consent:
    """Store a consent given at `data.granted_at` (default `at`, never after it)."""
    _borrower(session, borrower_id)
    if data.purpose not in CONSENT_PURPOSES:
        raise ValidationFailed(
            "purpose", "known-purpose", f"purpose must be one of {sorted(CONSENT_PURPOSES)}"
        )
    separate = CONSENT_PURPOSES[data.purpose]
    if separate and data.sensitive is False:
        raise ValidationFailed(
            "sensitive", "separate-consent", f"{data.purpose} needs a separate consent (PIPL 29)"
        )
    granted_at = _aware(data.granted_at or at, "granted_at")
    if granted_at > at:
        raise ValidationFailed("granted_at", "not-future", "granted_at is in the future")
    consent = Consent(
        borrower_id=borrower_id,
        purpose=data.purpose,
        scope=data.scope,
        text_version=data.text_version,
        sensitive=separate if data.sensitive is None else data.sensitive,
        channel=data.channel,
        ip_enc=cipher.encrypt(str(data.ip), context="consents.ip") if data.ip else None,
        granted_at=granted_at,
        withdrawn_at=None,
    )
    session.add(consent)
    session.flush()
    return consent


def withdraw_consent(
    session: Session, borrower_id: int, consent_id: int, *, at: datetime
) -> Consent:
    """Mark a consent withdrawn from `at` on. The record stays (a withdrawal is not a delete)."""
    consent = session.get(Consent, consent_id)
    if consent is None or consent.borrower_id != borrower_id:
        raise NotFound(
            f"consent {consent_id} of borrower {borrower_id} not found", field="consent_id"
        )
    if consent.withdrawn_at is not None:
        raise Conflict(
            "the consent is already withdrawn", field="consent_id", rule="already-withdrawn"
        )
    at = _aware(at, "withdrawn_at")
    if at < consent.granted_at:
        raise Conflict(
            "a consent cannot be withdrawn before it was given",
            field="consent_id",
            rule="before-grant",
        )
    consent.withdrawn_at = at
    session.flush()
    return consent


def list_consents(session: Session, borrower_id: int) -> list[Consent]:
    _borrower(session, borrower_id)
    query = select(Consent).where(Consent.borrower_id == borrower_id).order_by(Consent.id)
    return list(session.scalars(query))


def consent_in_force(consent: Consent, at: datetime) -> bool:
    return consent.granted_at <= at and (consent.withdrawn_at is None or consent.withdrawn_at > at)


def require_consent(session: Session, borrower_id: int, purposes: list[str], at: datetime) -> None:
    """Raise ConsentRequired (rule consent-required, naming the missing purposes) unless the
    borrower has a consent in force at `at` for every purpose. Call before any bureau pull,
    scoring or data use. Unknown purposes are a programming error (ValueError)."""
    unknown = [p for p in purposes if p not in CONSENT_PURPOSES]
    if unknown:
        raise ValueError(f"unknown consent purposes {unknown}; known: {sorted(CONSENT_PURPOSES)}")
    _aware(at, "at")
    _borrower(session, borrower_id)
    found = set(
        session.scalars(
            select(Consent.purpose).where(
                Consent.borrower_id == borrower_id,
                Consent.purpose.in_(purposes),
                Consent.granted_at <= at,
                or_(Consent.withdrawn_at.is_(None), Consent.withdrawn_at > at),
            )
        )
    )
    missing = [p for p in dict.fromkeys(purposes) if p not in found]
    if missing:
        raise ConsentRequired(borrower_id, missing)
