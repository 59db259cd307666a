"""Application use cases: submit (decide and record), read, accept. None commits.

submit_application: consent check first (credit_bureau and scoring, plus device_data,
social_commerce_data or identity_verification for the optional data sent), so nothing is
pulled or scored without consent; then the bureau report by the borrower's blind-index hash
(never the ID number), the device and social data, the ID-card OCR cross-check against the
decrypted name and ID number, the features, and `engine.decide`. The application and an
immutable DecisionRecord (the full input snapshot without images or personal data, and the
sha256 of its canonical JSON) are written in the caller's unit of work.

Optional checks not run count as "no finding": without an ID-card image `id_ocr_mismatch` is
false, without device signals `device_rooted` is false; the record says which checks ran.

An offer carries `valid_until` (the decision's business date + the context's
offer_valid_days, frozen on the record); accept_offer refuses it after that date (OfferExpired).
review_application records a credit officer's approve/decline of a referred application as a
separate append-only ApplicationReview row (the decision record is never changed) and sets the
application's status to the review's outcome; an approved review makes the record's offer
acceptable (a refer outcome always carries one: the engine prices and caps before the policy's
approve/refer applies), within the same validity date.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.core.canonical import canonical_json
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.db.session import is_postgres
from mobilend.decisioning import engine
from mobilend.decisioning.default_models import ModelSet
from mobilend.decisioning.features import build_features
from mobilend.decisioning.models import Application, ApplicationReview, DecisionRecord
from mobilend.decisioning.schemas import ApplicationIn, ReviewIn
from mobilend.decisioning.sources.bureau import BureauAdapter, BureauReport, NoReport
from mobilend.decisioning.sources.device import parse_device_signals
from mobilend.decisioning.sources.social import parse_social_metrics
from mobilend.loans.models import Loan
from mobilend.loans.schemas import LoanIn
from mobilend.loans.service import create_loan, get_product, product_config
from mobilend.origination.models import Borrower
from mobilend.origination.pii import PiiCipher
from mobilend.origination.service import decrypt_borrower, require_consent

RECORD_FORMAT = "mobilend-decision/1"
BASE_PURPOSES = ["credit_bureau", "scoring"]
DEFAULT_OFFER_VALID_DAYS = 7


class OfferExpired(Conflict):
    """The offer's valid_until is before the business date of the acceptance."""

    type = "offer-expired"
    title = "Offer expired"

    def __init__(self, application_id: int, valid_until: date, today: date) -> None:
        super().__init__(
            f"the offer of application {application_id} was valid until {valid_until}; "
            f"today is {today}",
            field="application_id",
            rule="offer-expired",
        )


@dataclass(frozen=True)
class DecisionContext:
    """What a decision needs besides the session: keys, the bureau, models and settings."""

    cipher: PiiCipher
    bureau: BureauAdapter
    models: ModelSet
    config: engine.EngineConfig
    offer_valid_days: int = DEFAULT_OFFER_VALID_DAYS

    @property
    def imei_key(self) -> bytes:
        return hmac.new(self.cipher.index_key, b"mobilend-imei", hashlib.sha256).digest()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(record)).hexdigest()


def consent_purposes(data: ApplicationIn) -> list[str]:
    purposes = list(BASE_PURPOSES)
    if data.device_signals is not None:
        purposes.append("device_data")
    if data.social_metrics is not None:
        purposes.append("social_commerce_data")
    if data.id_card_image_base64 is not None:
        purposes.append("identity_verification")
    return purposes


def _bureau_summary(result: BureauReport | NoReport) -> dict[str, Any]:
    if isinstance(result, NoReport):
        return {"status": "no_report", "source": result.source, "as_of": result.as_of.isoformat()}
    return {
        "status": "report",
        "source": result.source,
        "report_date": result.report_date.isoformat(),
        "currency": result.currency,
        "accounts": len(result.accounts),
        "inquiries": len(result.inquiries),
        "public_records": len(result.court_judgments),
        "blacklist": sorted(flag.value for flag in result.blacklist),
    }


def _id_card_check(
    session: Session, borrower: Borrower, image_b64: str, cipher: PiiCipher
) -> dict[str, Any]:
    from mobilend.origination.ocr import cross_check, read_id_card

    try:
        image = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            "id_card_image_base64", "base64", "id_card_image_base64 is not valid base64"
        ) from None
    reading = read_id_card(image)
    person = decrypt_borrower(borrower, cipher=cipher)
    check = cross_check(
        reading, name=person.name, id_number=person.id_number, address=person.address
    )
    return {
        "ran": True,
        "mismatch": check.mismatch,
        "fields": dict(check.fields),
        "address_similarity": check.address_similarity,
        "id_number_valid": reading.id_number_valid,
        "warnings": list(reading.warnings),
    }


def _inputs(data: ApplicationIn) -> dict[str, Any]:
    """The intake as recorded: no image, no raw device or social payloads (their features
    are on the record), nothing personal."""
    raw = data.model_dump(
        mode="json", exclude={"device_signals", "social_metrics", "id_card_image_base64"}
    )
    raw["device_signals_sent"] = data.device_signals is not None
    raw["social_metrics_sent"] = data.social_metrics is not None
    raw["id_card_image_sent"] = data.id_card_image_base64 is not None
    return dict(raw)


def submit_application(
    session: Session,
    data: ApplicationIn,
    *,
    ctx: DecisionContext,
    now: datetime,
    today: date,
) -> tuple[Application, DecisionRecord]:
    """Decide an application and record it; ConsentRequired before any data is used."""
    require_consent(session, data.borrower_id, consent_purposes(data), now)
    borrower = session.get(Borrower, data.borrower_id)
    if borrower is None:  # pragma: no cover - require_consent checked it
        raise NotFound(f"borrower {data.borrower_id} not found", field="borrower_id")
    product = get_product(session, data.product_code)
    config = product_config(product)
    if data.amount < config.min_principal:
        raise ValidationFailed(
            "amount", "product-range", f"amount must be at least {config.min_principal}"
        )
    if not config.min_periods <= data.periods <= config.max_periods:
        raise ValidationFailed(
            "periods",
            "product-range",
            f"periods must be between {config.min_periods} and {config.max_periods}",
        )

    bureau = ctx.bureau.fetch(borrower.id_number_index, as_of=today)
    device = (
        parse_device_signals(data.device_signals, imei_key=ctx.imei_key)
        if data.device_signals is not None
        else None
    )
    social = parse_social_metrics(data.social_metrics) if data.social_metrics is not None else None
    id_check: dict[str, Any] = {"ran": False, "mismatch": False}
    if data.id_card_image_base64 is not None:
        id_check = _id_card_check(session, borrower, data.id_card_image_base64, ctx.cipher)
    features: dict[str, Any] = dict(
        build_features(
            applicant={"birth_date": borrower.birth_date, "income_monthly": data.income_monthly},
            bureau=bureau,
            device=device,
            social=social,
            as_of=today,
        )
    )
    features["consent_scoring"] = True  # require_consent passed for "scoring"
    features["id_ocr_mismatch"] = bool(id_check["mismatch"])
    features["merchant"] = borrower.kind == "merchant"
    if device is None:
        features["device_rooted"] = False

    application = Application(
        borrower_id=borrower.id,
        product_code=product.code,
        amount=data.amount,
        periods=data.periods,
        purpose=data.purpose,
        business_date=today,
        status="pending",
        inputs=_inputs(data),
    )
    session.add(application)
    session.flush()

    decision = engine.decide(
        key=str(application.id),
        application=engine.ApplicationInput(
            amount=data.amount,
            periods=data.periods,
            purpose=data.purpose,
            income_monthly=data.income_monthly,
            employment=data.employment,
            employment_years=data.employment_years,
            housing=data.housing,
            dependents=data.dependents,
            collateral_value=data.collateral_value,
        ),
        features=features,
        product=engine.Product(product.code, product.currency, config),
        models=ctx.models,
        config=ctx.config,
        business_date=today,
    )
    application.status = decision.outcome
    record = {
        "format": RECORD_FORMAT,
        "application_id": application.id,
        "borrower_id": borrower.id,
        "business_date": today.isoformat(),
        "decided_at": now.isoformat(),
        "product": {"code": product.code, "currency": product.currency},
        "inputs": application.inputs,
        "consents_checked": consent_purposes(data),
        "bureau": _bureau_summary(bureau),
        "checks": {"id_card": id_check, "device_signals": device is not None},
        "settings": engine.jsonable(
            {
                "jurisdiction": ctx.config.jurisdiction.code,
                "cap_pct": ctx.config.jurisdiction.cap_pct,
                "cap_basis": ctx.config.jurisdiction.basis,
                "max_ltv": ctx.config.max_ltv,
                "regulatory_max": ctx.config.regulatory_max,
                "pricing": vars(ctx.config.pricing),
                "offer_valid_days": ctx.offer_valid_days,
            }
        ),
        **decision.record(),
    }
    offer = record.get("offer")
    if offer and offer.get("status") == "offered":
        valid_until = today + timedelta(days=ctx.offer_valid_days)
        record["offer"] = {**offer, "valid_until": valid_until.isoformat()}
    record = json.loads(canonical_json(record))  # exactly what the hash covers
    row = DecisionRecord(
        application_id=application.id,
        outcome=decision.outcome,
        record=record,
        record_hash=record_hash(record),
    )
    session.add(row)
    session.flush()
    return application, row


def get_application(session: Session, application_id: int) -> tuple[Application, DecisionRecord]:
    application = session.get(Application, application_id)
    if application is None:
        raise NotFound(f"application {application_id} not found", field="application_id")
    row = session.scalar(
        select(DecisionRecord).where(DecisionRecord.application_id == application_id)
    )
    if row is None:  # pragma: no cover - written in the same transaction
        raise NotFound(f"application {application_id} has no decision", field="application_id")
    return application, row


def offer_valid_until(
    application: Application, record: dict[str, Any], valid_days: int
) -> date | None:
    """The last business date the record's offer can be accepted; None without an offer.
    Records written before offers carried `valid_until` get business date + valid_days."""
    offer = record.get("offer") or {}
    if offer.get("status") != "offered":
        return None
    if "valid_until" in offer:
        return date.fromisoformat(offer["valid_until"])
    return application.business_date + timedelta(days=valid_days)


def get_review(session: Session, application_id: int) -> ApplicationReview | None:
    return session.scalar(
        select(ApplicationReview).where(ApplicationReview.application_id == application_id)
    )


def _locked_application(session: Session, application_id: int) -> Application:
    query = select(Application).where(Application.id == application_id)
    if is_postgres(session):
        query = query.with_for_update()
    application = session.scalar(query)
    if application is None:
        raise NotFound(f"application {application_id} not found", field="application_id")
    return application


def review_application(
    session: Session,
    application_id: int,
    data: ReviewIn,
    *,
    reviewer_id: int,
    reviewer_name: str,
    now: datetime,
    today: date,
    valid_days: int = DEFAULT_OFFER_VALID_DAYS,
) -> tuple[Application, DecisionRecord, ApplicationReview]:
    """A credit officer approves or declines a referred application. Conflict (rule
    not-referred) unless the decision was refer, (already-reviewed) the second time; an
    approval after the offer's valid_until is OfferExpired (a decline is still recorded)."""
    application = _locked_application(session, application_id)
    _, row = get_application(session, application_id)
    if row.outcome != "refer":
        raise Conflict(
            f"application {application_id} was not referred (decision: {row.outcome})",
            field="application_id",
            rule="not-referred",
        )
    if get_review(session, application_id) is not None:
        raise Conflict(
            f"application {application_id} is already reviewed (status: {application.status})",
            field="application_id",
            rule="already-reviewed",
        )
    if data.outcome == "approve":
        valid_until = offer_valid_until(application, row.record, valid_days)
        if valid_until is None:  # pragma: no cover - a refer outcome always has an offer
            raise Conflict("the application has no offer", field="application_id", rule="no-offer")
        if today > valid_until:
            raise OfferExpired(application_id, valid_until, today)
    review = ApplicationReview(
        application_id=application_id,
        outcome=data.outcome,
        reason=data.reason,
        reviewer_credential_id=reviewer_id,
        reviewer_name=reviewer_name,
        business_date=today,
        reviewed_at=now,
    )
    session.add(review)
    application.status = data.outcome
    session.flush()
    return application, row, review


def accept_offer(
    session: Session,
    application_id: int,
    *,
    today: date,
    valid_days: int = DEFAULT_OFFER_VALID_DAYS,
) -> tuple[Application, Loan]:
    """Book the loan of an approved offer (by the decision, or by a review of a referral), on
    exactly the offered terms (amount, rate, periods, start date). A second acceptance is a
    Conflict (rule already-accepted); after the offer's valid_until, OfferExpired."""
    application = _locked_application(session, application_id)
    if application.status == "accepted":
        raise Conflict(
            f"application {application_id} is already accepted (loan {application.loan_id})",
            field="application_id",
            rule="already-accepted",
        )
    if application.status != "approve":
        raise Conflict(
            f"application {application_id} was not approved (decision: {application.status})",
            field="application_id",
            rule="not-approved",
        )
    _, row = get_application(session, application_id)
    offer = row.record.get("offer") or {}
    valid_until = offer_valid_until(application, row.record, valid_days)
    if valid_until is None:  # pragma: no cover - approve always has an offer
        raise Conflict("the application has no offer", field="application_id", rule="no-offer")
    if today > valid_until:
        raise OfferExpired(application_id, valid_until, today)
    loan = create_loan(
        session,
        LoanIn(
            product_code=application.product_code,
            principal=offer["amount"],
            periods=offer["periods"],
            start_date=offer["start_date"],
            annual_rate_pct=offer["nominal_rate_pct"],
            borrower_ref=f"borrower:{application.borrower_id}/application:{application.id}",
        ),
    )
    application.status = "accepted"
    application.loan_id = loan.id
    session.flush()
    return application, loan
