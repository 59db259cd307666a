"""HTTP routes for borrowers and consents. Personal data comes in bodies (never in URLs) and
goes out masked; nothing here logs it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mobilend.api.auth import Principal, require
from mobilend.core.errors import ValidationFailed
from mobilend.db.session import unit_of_work
from mobilend.origination import pii, service
from mobilend.origination.models import Consent
from mobilend.origination.schemas import (
    BorrowerIn,
    BorrowerOut,
    BorrowerSearch,
    ConsentIn,
    ConsentOut,
)
from mobilend.origination.service import BorrowerRecord
from mobilend.origination.validation import age_on

router = APIRouter(prefix="/v1", tags=["borrowers"])


def request_cipher(request: Request) -> pii.PiiCipher:
    """The app's keys, loaded on first use (zero-config development creates the key file)."""
    state = request.app.state
    if getattr(state, "pii", None) is None:
        state.pii = service.cipher_from_settings(state.settings)
    cipher: pii.PiiCipher = state.pii
    return cipher


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


def masked(record: BorrowerRecord, today: date) -> dict[str, Any]:
    """The borrower as the API shows it: every personal field masked; age, not birth date."""
    number = pii.mask_id_number(record.id_number)
    created = record.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # SQLite's CURRENT_TIMESTAMP is UTC
    out = BorrowerOut(
        id=record.id,
        kind=record.kind,
        name=pii.mask_name(record.name),
        id_number=number if record.kind == "person" else None,
        uscc=number if record.kind == "merchant" else None,
        phone=pii.mask_phone(record.phone),
        bank_card=pii.mask_bank_card(record.bank_card) if record.bank_card else None,
        address=pii.mask_address(record.address) if record.address else None,
        gender=record.gender,
        age=age_on(record.birth_date, today) if record.birth_date else None,
        region_code=record.region_code,
        key_id=record.key_id,
        created_at=created,
    )
    return out.model_dump(mode="json")


def _consent_out(consent: Consent, at: datetime) -> dict[str, Any]:
    """Times in UTC, whatever zone they were given in."""
    return ConsentOut(
        id=consent.id,
        borrower_id=consent.borrower_id,
        purpose=consent.purpose,
        scope=consent.scope,
        text_version=consent.text_version,
        sensitive=consent.sensitive,
        channel=consent.channel,
        ip_recorded=consent.ip_enc is not None,
        granted_at=consent.granted_at.astimezone(UTC),
        withdrawn_at=consent.withdrawn_at.astimezone(UTC) if consent.withdrawn_at else None,
        active=service.consent_in_force(consent, at),
    ).model_dump(mode="json")


# ---------------------------------------------------------------- borrowers


@router.post("/borrowers", status_code=201)
def register_borrower(
    body: BorrowerIn, request: Request, _: Principal = require("borrowers:write")
) -> JSONResponse:
    """Register a person (id_number) or merchant (uscc); 409 when the number is registered."""
    settings = request.app.state.settings
    cipher, today = request_cipher(request), _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        borrower = service.register_borrower(
            session,
            body,
            cipher=cipher,
            today=today,
            min_age=settings.borrower_min_age,
            max_age=settings.borrower_max_age,
        )
        out = masked(service.decrypt_borrower(borrower, cipher=cipher), today)
    return JSONResponse(out, status_code=201)


@router.post("/borrowers/search")
def search_borrowers(
    body: BorrowerSearch, request: Request, _: Principal = require("borrowers:read")
) -> dict[str, Any]:
    """Find borrowers by exactly one of id_number, uscc or phone (via the blind index)."""
    given = [name for name, value in body.model_dump().items() if value is not None]
    if len(given) != 1:
        raise ValidationFailed("body", "one-field", "give exactly one of id_number, uscc, phone")
    cipher, today = request_cipher(request), _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        if body.phone is not None:
            found = service.find_by_phone(session, body.phone, cipher=cipher)
        else:
            kind = "person" if body.id_number is not None else "merchant"
            number = body.id_number if body.id_number is not None else body.uscc
            assert number is not None
            one = service.find_by_id_number(session, number, cipher=cipher, kind=kind)
            found = [one] if one is not None else []
    return {"borrowers": [masked(r, today) for r in found]}


@router.get("/borrowers/{borrower_id}")
def get_borrower(
    borrower_id: int, request: Request, _: Principal = require("borrowers:read")
) -> dict[str, Any]:
    cipher = request_cipher(request)
    with unit_of_work(request.app.state.sessions) as session:
        record = service.get_borrower(session, borrower_id, cipher=cipher)
    return masked(record, _today(request))


# ---------------------------------------------------------------- consents


@router.post("/borrowers/{borrower_id}/consents", status_code=201)
def record_consent(
    borrower_id: int, body: ConsentIn, request: Request, _: Principal = require("consents:write")
) -> JSONResponse:
    now, cipher = _now(request), request_cipher(request)
    with unit_of_work(request.app.state.sessions) as session:
        consent = service.record_consent(session, borrower_id, body, cipher=cipher, at=now)
        out = _consent_out(consent, now)
    return JSONResponse(out, status_code=201)


@router.post("/borrowers/{borrower_id}/consents/{consent_id}/withdrawal")
def withdraw_consent(
    borrower_id: int, consent_id: int, request: Request, _: Principal = require("consents:write")
) -> dict[str, Any]:
    """Withdraw a consent now. The record is kept with its withdrawal time."""
    now = _now(request)
    with unit_of_work(request.app.state.sessions) as session:
        consent = service.withdraw_consent(session, borrower_id, consent_id, at=now)
        return _consent_out(consent, now)


@router.get("/borrowers/{borrower_id}/consents")
def list_consents(
    borrower_id: int, request: Request, _: Principal = require("borrowers:read")
) -> list[dict[str, Any]]:
    now = _now(request)
    with unit_of_work(request.app.state.sessions) as session:
        return [_consent_out(c, now) for c in service.list_consents(session, borrower_id)]
