"""Applications on SQLite and PostgreSQL: consent first, the decision record (hash, append-only),
acceptance booking the loan on the offered terms, once, until the offer expires; the manual
review of a referral (append-only, the decision record unchanged)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from mobilend.api.auth import create_credential
from mobilend.core.errors import Conflict
from mobilend.decisioning import service as decisions
from mobilend.decisioning.default_models import load_models
from mobilend.decisioning.engine import EngineConfig
from mobilend.decisioning.models import Application, ApplicationReview, DecisionRecord
from mobilend.decisioning.schemas import ApplicationIn, ReviewIn
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources.bureau import FileBureau, NoReport
from mobilend.loans import service as loans
from mobilend.loans.models import Loan
from mobilend.loans.schemas import ProductIn
from mobilend.origination import service as origination
from mobilend.origination.models import Borrower
from mobilend.origination.schemas import ConsentIn
from mobilend.origination.service import ConsentRequired
from tests.integration.helpers import Db
from tests.integration.test_borrowers import CIPHER, NOON, TODAY, new_id_number, person
from tests.unit.test_engine import clean_bureau, shared_model_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> decisions.DecisionContext:
    return decisions.DecisionContext(
        cipher=CIPHER,
        bureau=FileBureau(tmp_path),
        models=load_models(shared_model_dir(tmp_path_factory)),
        config=EngineConfig(),
    )


def setup_borrower(db: Db, ctx: decisions.DecisionContext, *consents: str) -> int:
    """A 35-year-old with a clean bureau file, and the given consents."""
    data = person(id_number=new_id_number(date(1990, 1, 1)))
    borrower_id = db(
        lambda s: origination.register_borrower(s, data, cipher=CIPHER, today=TODAY).id
    )
    for purpose in consents:
        db(
            lambda s, p=purpose: origination.record_consent(
                s,
                borrower_id,
                ConsentIn(purpose=p, scope="loan application", text_version="v1"),
                cipher=CIPHER,
                at=NOON,
            )
        )
    subject = db(lambda s: s.get(Borrower, borrower_id).id_number_index)  # type: ignore[union-attr]
    assert isinstance(ctx.bureau, FileBureau)
    report = replace(clean_bureau(), subject_hash=subject, report_date=TODAY)
    (ctx.bureau.directory / f"{subject}.json").write_text(json.dumps(report.to_json()))
    return borrower_id


def ensure_product(db: Db, code: str) -> None:
    def make(s):  # type: ignore[no-untyped-def]
        if (
            s.scalar(
                select(func.count()).select_from(loans.Product).where(loans.Product.code == code)
            )
            == 0
        ):
            loans.create_product(s, ProductIn(code=code, name="Phone loan"))

    db(make)


def body(borrower_id: int, code: str, **over: object) -> ApplicationIn:
    data: dict[str, object] = {
        "borrower_id": borrower_id,
        "product_code": code,
        "amount": "3000",
        "periods": 6,
        "purpose": "phone",
        "income_monthly": "8000",
        "employment": "management",
        "employment_years": "8",
        "housing": "own",
        "dependents": 1,
    }
    data.update(over)
    return ApplicationIn.model_validate(data)


def test_consent_is_checked_before_anything(db_url: str, ctx: decisions.DecisionContext) -> None:
    db = Db(db_url)
    code = f"P{abs(hash(db_url)) % 10**6}"
    ensure_product(db, code)
    borrower_id = setup_borrower(db, ctx, "credit_bureau")

    class Spy:
        calls = 0

        def fetch(self, subject_hash: str, *, as_of: date) -> NoReport:
            Spy.calls += 1
            return NoReport(subject_hash, as_of, "spy")

    spied = replace(ctx, bureau=Spy())
    with pytest.raises(ConsentRequired) as err:
        db(
            lambda s: decisions.submit_application(
                s, body(borrower_id, code), ctx=spied, now=NOON, today=TODAY
            )
        )
    assert err.value.missing == ["scoring"] and err.value.field == "purpose"
    assert Spy.calls == 0
    count = db(
        lambda s: s.scalar(
            select(func.count())
            .select_from(Application)
            .where(Application.borrower_id == borrower_id)
        )
    )
    assert count == 0


def test_decide_record_accept(db_url: str, ctx: decisions.DecisionContext) -> None:
    db = Db(db_url)
    code = "PHONE-INT"
    ensure_product(db, code)
    borrower_id = setup_borrower(db, ctx, "credit_bureau", "scoring")
    app_id, record_id = db(
        lambda s: tuple(
            x.id
            for x in decisions.submit_application(
                s, body(borrower_id, code), ctx=ctx, now=NOON, today=TODAY
            )
        )
    )
    application, row = db(lambda s: decisions.get_application(s, app_id))
    assert application.status == row.outcome == "approve", row.record["reasons"]
    assert row.id == record_id
    assert decisions.record_hash(row.record) == row.record_hash
    rec = row.record
    assert rec["bureau"]["status"] == "report" and rec["bureau"]["accounts"] == 1
    assert rec["features"]["age"] == 35 and rec["features"]["total_bureau_balance"] == 0
    assert rec["inputs"]["amount"] == "3000" and "id_card_image_base64" not in rec["inputs"]
    assert rec["models"]["shadow"] is not None
    # no personal data on the record
    borrower = db(lambda s: origination.get_borrower(s, borrower_id, cipher=CIPHER))
    dumped = json.dumps(rec, ensure_ascii=False)
    assert borrower.id_number not in dumped and borrower.name not in dumped

    offer = rec["offer"]
    loan_app, loan = db(lambda s: decisions.accept_offer(s, app_id, today=TODAY))
    assert loan_app.status == "accepted"
    stored = db(lambda s: s.get(Loan, loan.id))
    assert stored is not None
    assert stored.principal == Decimal(offer["amount"])
    assert Decimal(stored.terms["annual_rate"]) * 100 == Decimal(offer["nominal_rate_pct"])
    assert stored.terms["periods"] == offer["periods"] == 6
    with pytest.raises(Conflict) as again:
        db(lambda s: decisions.accept_offer(s, app_id, today=TODAY))
    assert again.value.rule == "already-accepted"


def test_decision_records_are_append_only(db_url: str, ctx: decisions.DecisionContext) -> None:
    db = Db(db_url)
    code = "PHONE-INT"
    ensure_product(db, code)
    borrower_id = setup_borrower(db, ctx, "credit_bureau", "scoring")
    app_id = db(
        lambda s: (
            decisions.submit_application(
                s, body(borrower_id, code), ctx=ctx, now=NOON, today=TODAY
            )[0].id
        )
    )
    for sql in (
        "UPDATE decision_records SET outcome = 'approve' WHERE application_id = :a",
        "UPDATE decision_records SET record_hash = 'x' WHERE application_id = :a",
        "DELETE FROM decision_records WHERE application_id = :a",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db(lambda s, q=sql: s.execute(text(q), {"a": app_id}))
    row = db(
        lambda s: s.scalar(select(DecisionRecord).where(DecisionRecord.application_id == app_id))
    )
    assert row is not None and decisions.record_hash(row.record) == row.record_hash


def rooted_device() -> dict[str, object]:
    """The sample device signals, collected the day before TODAY, from a rooted phone."""
    signals = json.loads((SAMPLES_DIR / "device.json").read_text())
    signals["collected_at"] = "2025-01-14T09:30:00+08:00"
    signals["integrity"]["rooted"] = True
    return dict(signals)


def submit(db: Db, ctx: decisions.DecisionContext, data: ApplicationIn) -> int:
    return db(lambda s: decisions.submit_application(s, data, ctx=ctx, now=NOON, today=TODAY)[0].id)


def test_offer_expires_after_the_valid_days(db_url: str, ctx: decisions.DecisionContext) -> None:
    db = Db(db_url)
    code = "PHONE-INT"
    ensure_product(db, code)
    short = replace(ctx, offer_valid_days=3)
    late, in_time = (
        submit(db, short, body(setup_borrower(db, ctx, "credit_bureau", "scoring"), code))
        for _ in range(2)
    )
    _, row = db(lambda s: decisions.get_application(s, late))
    assert row.outcome == "approve" and row.record["offer"]["valid_until"] == "2025-01-18"
    assert row.record["settings"]["offer_valid_days"] == 3
    with pytest.raises(decisions.OfferExpired) as err:
        db(lambda s: decisions.accept_offer(s, late, today=date(2025, 1, 19)))
    assert (err.value.type, err.value.rule, err.value.field) == (
        "offer-expired",
        "offer-expired",
        "application_id",
    )
    assert db(lambda s: s.get(Application, late).status) == "approve"  # type: ignore[union-attr]
    accepted, _ = db(lambda s: decisions.accept_offer(s, in_time, today=date(2025, 1, 18)))
    assert accepted.status == "accepted"


def test_review_of_a_referral(db_url: str, ctx: decisions.DecisionContext) -> None:
    db = Db(db_url)
    code = "PHONE-INT"
    ensure_product(db, code)
    purposes = ("credit_bureau", "scoring", "device_data")
    referred = [
        submit(
            db, ctx, body(setup_borrower(db, ctx, *purposes), code, device_signals=rooted_device())
        )
        for _ in range(2)
    ]
    approved = submit(db, ctx, body(setup_borrower(db, ctx, *purposes), code))
    for app_id in referred:
        _, row = db(lambda s, a=app_id: decisions.get_application(s, a))
        assert row.outcome == "refer", row.record["reasons"]
        assert "RF_DEVICE_ROOTED" in [h["rule_id"] for h in row.record["policy"]["hits"]]
        assert row.record["offer"]["status"] == "offered"  # a referral keeps its offer
    hash_before = row.record_hash

    def review(app_id: int, outcome: str, today: date = TODAY) -> ApplicationReview:
        return db(
            lambda s: decisions.review_application(
                s,
                app_id,
                ReviewIn(outcome=outcome, reason="  device checked in branch  "),  # type: ignore[arg-type]
                reviewer_id=credential_id,
                reviewer_name="officer-1",
                now=NOON + timedelta(hours=1),
                today=today,
            )[2]
        )

    credential_id = db(lambda s: create_credential(s, name="officer-1", role="officer")[0].id)
    with pytest.raises(Conflict) as not_referred:
        review(approved, "approve")
    assert not_referred.value.rule == "not-referred"
    with pytest.raises(Conflict) as refer_accept:
        db(lambda s: decisions.accept_offer(s, referred[0], today=TODAY))
    assert refer_accept.value.rule == "not-approved"
    with pytest.raises(decisions.OfferExpired):  # approving an offer past its valid_until
        review(referred[0], "approve", today=TODAY + timedelta(days=8))

    done = review(referred[0], "approve")
    assert (done.outcome, done.reason, done.reviewer_name) == (
        "approve",
        "device checked in branch",
        "officer-1",
    )
    assert done.reviewed_at == NOON + timedelta(hours=1) and done.business_date == TODAY
    with pytest.raises(Conflict) as twice:
        review(referred[0], "decline")
    assert twice.value.rule == "already-reviewed"
    application, row = db(lambda s: decisions.get_application(s, referred[0]))
    assert application.status == "approve" and row.outcome == "refer"
    assert decisions.record_hash(row.record) == row.record_hash
    accepted, loan = db(lambda s: decisions.accept_offer(s, referred[0], today=TODAY))
    assert accepted.status == "accepted"
    assert loan.principal == Decimal(row.record["offer"]["amount"])

    assert review(referred[1], "decline").outcome == "decline"
    assert db(lambda s: s.get(Application, referred[1]).status) == "decline"  # type: ignore[union-attr]
    with pytest.raises(Conflict) as declined:
        db(lambda s: decisions.accept_offer(s, referred[1], today=TODAY))
    assert declined.value.rule == "not-approved"
    _, row = db(lambda s: decisions.get_application(s, referred[1]))
    assert row.outcome == "refer" and row.record_hash == hash_before

    for sql in (
        "UPDATE application_reviews SET outcome = 'approve' WHERE application_id = :a",
        "DELETE FROM application_reviews WHERE application_id = :a",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db(lambda s, q=sql: s.execute(text(q), {"a": referred[1]}))
