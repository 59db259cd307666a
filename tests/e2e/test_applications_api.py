"""Applications over HTTP: consent problem, borrower -> consents -> application -> approve ->
acceptance -> loan on the offered terms; offer expiry; explain for operators; immutable decision
records; device signals (consent, a rooted phone referred) and the manual review of a referral;
a merchant's social metrics."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from stdnum.cn import uscc

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.db.session import session_factory, unit_of_work
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.settings import Settings
from tests.integration.test_borrowers import new_id_number, new_phone
from tests.unit.test_engine import clean_bureau, shared_model_dir

TODAY = date(2025, 1, 15)


@dataclass
class Env:
    client: TestClient
    app: Any
    bureau_dir: Path
    admin: dict[str, str]
    viewer: dict[str, str]
    officer: dict[str, str]

    def travel(self, day: date) -> None:
        """Set the business clock (noon in Shanghai on `day`)."""
        self.app.state.clock.current = datetime(
            day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Asia/Shanghai")
        )


@pytest.fixture
def env(db_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    bureau_dir = tmp_path / "bureau"
    bureau_dir.mkdir()
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        model_dir=shared_model_dir(tmp_path_factory),
        bureau=str(bureau_dir),
        preload_models=True,  # a decision server: models loaded before the first request
    )
    clock = FixedClock(datetime(2025, 1, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    app = create_app(settings, clock=clock)
    with unit_of_work(session_factory(app.state.engine)) as session:
        _, admin = create_credential(session, name="apps-admin", role="admin")
        _, viewer = create_credential(session, name="apps-viewer", role="viewer")
        _, officer = create_credential(session, name="apps-officer", role="officer")
    with TestClient(app) as client:
        assert app.state.models is not None  # loaded at startup
        yield Env(
            client,
            app,
            bureau_dir,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {viewer}"},
            {"Authorization": f"Bearer {officer}"},
        )
    app.state.engine.dispose()


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": f"{name}-{new_phone()}"}


def consent(env: Env, borrower_id: int, *purposes: str) -> None:
    for purpose in purposes:
        c = env.client.post(
            f"/v1/borrowers/{borrower_id}/consents",
            json={"purpose": purpose, "scope": "loan application", "text_version": "v1"},
            headers=env.admin,
        )
        assert c.status_code == 201, c.text


def borrower_with(
    env: Env, *purposes: str, merchant: bool = False, id_number: str | None = None
) -> int:
    """A person born 1990-01-01 (or a merchant with a fresh USCC), with a clean bureau file."""
    if merchant:
        base = "91110108" + "".join(random.choices("0123456789ABCDEFGHJKLMNPQRTUWXY", k=9))
        number = base + uscc.calc_check_digit(base)
        person = {"kind": "merchant", "name": "某某小店", "uscc": number, "phone": new_phone()}
    else:
        number = id_number or new_id_number(date(1990, 1, 1))
        person = {"name": "李四", "id_number": number, "phone": new_phone()}
    r = env.client.post("/v1/borrowers", json=person, headers=env.admin)
    assert r.status_code == 201, r.text
    borrower_id = int(r.json()["id"])
    consent(env, borrower_id, *purposes)
    # a clean bureau file under the borrower's blind-index hash (the bureau never sees the ID)
    subject = env.app.state.pii.blind_index(number, context="id_number")
    report = replace(clean_bureau(), subject_hash=subject, report_date=TODAY)
    (env.bureau_dir / f"{subject}.json").write_text(json.dumps(report.to_json()))
    return borrower_id


def product(env: Env, code: str = "PHONE") -> str:
    r = env.client.post(
        "/v1/products", json={"code": code, "name": "Phone loan"}, headers=env.admin
    )
    assert r.status_code in (201, 409), r.text
    return code


def application(borrower_id: int, code: str, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
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
    return data


def test_consent_missing_is_a_409_problem(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau")
    r = env.client.post(
        "/v1/applications",
        json=application(borrower_id, code),
        headers={**env.admin, **key("no-consent")},
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/consent-required") and problem["field"] == "purpose"
    assert "scoring" in problem["detail"]


def test_idempotency_key_and_permissions(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring")
    body = application(borrower_id, code)
    assert env.client.post("/v1/applications", json=body, headers=env.admin).status_code == 400
    r = env.client.post("/v1/applications", json=body, headers={**env.viewer, **key("v")})
    assert r.status_code == 403
    r = env.client.post(
        "/v1/applications", json={**body, "amount": 3000.0}, headers={**env.admin, **key("f")}
    )
    assert r.status_code == 422 and r.json()["field"] == "amount"


def test_full_flow_to_a_loan_on_the_offered_terms(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring")
    headers = {**env.admin, **key("apply")}
    r = env.client.post("/v1/applications", json=application(borrower_id, code), headers=headers)
    assert r.status_code == 201, r.text
    decided = r.json()
    assert decided["decision"] == decided["status"] == "approve", decided["reasons"]
    replay = env.client.post(
        "/v1/applications", json=application(borrower_id, code), headers=headers
    )
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == decided

    app_id = decided["id"]
    shown = env.client.get(f"/v1/applications/{app_id}", headers=env.viewer).json()
    offer = shown["offer"]
    assert offer["status"] == "offered" and Decimal(offer["amount"]) == 3000
    assert Decimal(offer["irr_compound_pct"]) <= 24 and Decimal(offer["irr_simple_pct"]) <= 24
    schedule = offer["schedule"]
    assert len(schedule) == 6
    assert sum(Decimal(i["total"]) for i in schedule) == Decimal(offer["total_payment"])
    assert sum(Decimal(i["principal"]) for i in schedule) == Decimal("3000")
    assert Decimal(offer["total_payment"]) - Decimal(offer["total_interest"]) == Decimal("3000")

    assert (
        env.client.get(f"/v1/applications/{app_id}/explain", headers=env.viewer).status_code == 403
    )
    explain = env.client.get(f"/v1/applications/{app_id}/explain", headers=env.admin).json()
    assert explain["record_hash_ok"] is True and len(explain["record_hash"]) == 64
    record = explain["record"]
    assert {"deciding", "shadow"} <= set(record["models"])
    assert record["pricing"]["rate"] and record["limit"]["binding"] == "affordability"
    assert record["features"]["age"] == 35

    accept = {**env.admin, **key("accept")}
    a = env.client.post(f"/v1/applications/{app_id}/acceptance", headers=accept)
    assert a.status_code == 201, a.text
    accepted = a.json()
    assert accepted["status"] == "accepted"
    loan_id = accepted["loan"]["id"]
    again = env.client.post(f"/v1/applications/{app_id}/acceptance", headers=accept)
    assert again.status_code == 201 and again.json()["loan"]["id"] == loan_id
    second = env.client.post(
        f"/v1/applications/{app_id}/acceptance", headers={**env.admin, **key("accept2")}
    )
    assert second.status_code == 409 and second.json()["rule"] == "already-accepted"

    loan = env.client.get(f"/v1/loans/{loan_id}", headers=env.admin)
    assert loan.status_code == 200, loan.text
    assert Decimal(loan.json()["principal"]) == Decimal(offer["amount"])
    statement = env.client.get(f"/v1/loans/{loan_id}/statement", headers=env.admin)
    assert statement.status_code == 200, statement.text
    booked = statement.json()["installments"]
    parts = ("due_date", "principal", "interest", "fee")
    assert [[i[k] for k in parts] for i in booked] == [[i[k] for k in parts] for i in schedule]


def test_decline_cannot_be_accepted(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring")
    r = env.client.post(
        "/v1/applications",
        json=application(borrower_id, code, income_monthly="0", amount="5000"),
        headers={**env.admin, **key("poor")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["decision"] == "decline" and r.json()["offer"] is None
    zh = [x["zh"] for x in r.json()["reasons"]]
    assert all(zh)
    a = env.client.post(
        f"/v1/applications/{r.json()['id']}/acceptance", headers={**env.admin, **key("acc")}
    )
    assert a.status_code == 409 and a.json()["rule"] == "not-approved"


def test_decision_record_update_fails(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring")
    r = env.client.post(
        "/v1/applications",
        json=application(borrower_id, code),
        headers={**env.admin, **key("imm")},
    )
    app_id = r.json()["id"]
    with pytest.raises(DBAPIError, match="append-only"), env.app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE decision_records SET outcome = 'decline' WHERE application_id = :a"),
            {"a": app_id},
        )
    assert (
        env.client.get(f"/v1/applications/{app_id}", headers=env.viewer).json()["decision"]
        == (r.json()["decision"])
    )


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES_DIR / name).read_text())
    return data


def device_signals(*, rooted: bool) -> dict[str, Any]:
    """The sample device signals, collected the day before TODAY (later ones are refused)."""
    signals = sample("device.json")
    signals["collected_at"] = "2025-01-14T09:30:00+08:00"
    signals["integrity"]["rooted"] = rooted
    return signals


def test_offer_expires_after_the_valid_days(env: Env) -> None:
    code = product(env)
    body = application(borrower_with(env, "credit_bureau", "scoring"), code)
    r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key("exp")})
    assert r.status_code == 201 and r.json()["decision"] == "approve", r.text
    app_id = r.json()["id"]
    assert r.json()["offer"]["valid_until"] == "2025-01-22"  # TODAY + MOBILEND_OFFER_VALID_DAYS
    shown = env.client.get(f"/v1/applications/{app_id}", headers=env.viewer).json()
    assert shown["offer"]["valid_until"] == "2025-01-22" and shown["review"] is None

    env.travel(date(2025, 1, 23))
    late = env.client.post(
        f"/v1/applications/{app_id}/acceptance", headers={**env.admin, **key("late")}
    )
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")
    problem = late.json()
    assert problem["type"].endswith("/offer-expired") and problem["rule"] == "offer-expired"
    assert problem["field"] == "application_id" and "2025-01-22" in problem["detail"]

    env.travel(date(2025, 1, 22))  # the last day is still in time
    a = env.client.post(
        f"/v1/applications/{app_id}/acceptance", headers={**env.admin, **key("last-day")}
    )
    assert a.status_code == 201, a.text
    assert a.json()["status"] == "accepted"


def test_device_signals_need_consent_and_a_rooted_phone_is_referred(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring")
    body = application(borrower_id, code, device_signals=device_signals(rooted=True))
    r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key("dev0")})
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/consent-required") and r.json()["field"] == "purpose"
    assert "device_data" in r.json()["detail"]

    consent(env, borrower_id, "device_data")
    r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key("dev1")})
    assert r.status_code == 201, r.text
    referred = r.json()
    assert referred["decision"] == referred["status"] == "refer"
    assert "RF_DEVICE_ROOTED" in [x["code"] for x in referred["reasons"]]
    assert referred["offer"]["status"] == "offered"  # a referral keeps its offer
    explain = env.client.get(f"/v1/applications/{referred['id']}/explain", headers=env.admin)
    record = explain.json()["record"]
    assert record["checks"]["device_signals"] is True
    assert record["features"]["device_rooted"] is True
    assert record["features"]["device_sim_tenure_days"] == 830
    assert "imei" not in json.dumps(record) and "490154203237518" not in json.dumps(record)
    assert record["inputs"]["device_signals_sent"] is True

    # the same applicant with an intact phone is approved: the root flag made the referral
    clean = application(borrower_id, code, device_signals=device_signals(rooted=False))
    r = env.client.post("/v1/applications", json=clean, headers={**env.admin, **key("dev2")})
    assert r.status_code == 201 and r.json()["decision"] == "approve", r.text


def test_review_of_a_referral(env: Env) -> None:
    code = product(env)
    borrower_id = borrower_with(env, "credit_bureau", "scoring", "device_data")
    body = application(borrower_id, code, device_signals=device_signals(rooted=True))
    ids = []
    for name in ("rv1", "rv2"):
        r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key(name)})
        assert r.status_code == 201 and r.json()["decision"] == "refer", r.text
        ids.append(r.json()["id"])
    approve_id, decline_id = ids
    review = {"outcome": "approve", "reason": "Phone inspected in the branch: not rooted."}

    a = env.client.post(
        f"/v1/applications/{approve_id}/acceptance", headers={**env.admin, **key("early")}
    )
    assert a.status_code == 409 and a.json()["rule"] == "not-approved"
    url = f"/v1/applications/{approve_id}/review"
    assert env.client.post(url, json=review, headers={**env.viewer, **key("v")}).status_code == 403
    assert env.client.post(url, json=review, headers=env.officer).status_code == 400
    bad = env.client.post(
        url, json={**review, "outcome": "refer"}, headers={**env.officer, **key("bad")}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "outcome"

    headers = {**env.officer, **key("review")}
    r = env.client.post(url, json=review, headers=headers)
    assert r.status_code == 201, r.text
    reviewed = r.json()
    assert reviewed["status"] == "approve" and reviewed["decision"] == "refer"
    shown = env.client.get(f"/v1/applications/{approve_id}", headers=env.viewer).json()
    assert shown["review"] == reviewed["review"]
    assert shown["review"]["outcome"] == "approve"
    assert shown["review"]["reason"] == review["reason"]
    assert shown["review"]["reviewer"]["name"] == "apps-officer"
    assert shown["review"]["business_date"] == "2025-01-15"
    assert shown["review"]["reviewed_at"] == "2025-01-15T04:00:00+00:00"  # noon in Shanghai
    assert env.client.post(url, json=review, headers=headers).json() == reviewed  # replay
    again = env.client.post(
        url, json={**review, "outcome": "decline"}, headers={**env.admin, **key("again")}
    )
    assert again.status_code == 409 and again.json()["rule"] == "already-reviewed"
    explain = env.client.get(f"/v1/applications/{approve_id}/explain", headers=env.admin).json()
    assert explain["record"]["outcome"] == "refer" and explain["record_hash_ok"] is True

    a = env.client.post(
        f"/v1/applications/{approve_id}/acceptance", headers={**env.admin, **key("acc")}
    )
    assert a.status_code == 201, a.text
    assert Decimal(a.json()["loan"]["principal"]) == Decimal(shown["offer"]["amount"])

    r = env.client.post(
        f"/v1/applications/{decline_id}/review",
        json={"outcome": "decline", "reason": "Rooted phone confirmed."},
        headers={**env.admin, **key("decl")},
    )
    assert r.status_code == 201 and r.json()["status"] == "decline", r.text
    a = env.client.post(
        f"/v1/applications/{decline_id}/acceptance", headers={**env.admin, **key("acc2")}
    )
    assert a.status_code == 409 and a.json()["rule"] == "not-approved"

    clean = application(borrower_id, code)
    r = env.client.post("/v1/applications", json=clean, headers={**env.admin, **key("ok")})
    assert r.json()["decision"] == "approve", r.text
    not_referred = env.client.post(
        f"/v1/applications/{r.json()['id']}/review",
        json=review,
        headers={**env.admin, **key("nr")},
    )
    assert not_referred.status_code == 409 and not_referred.json()["rule"] == "not-referred"


def test_merchant_with_social_metrics(env: Env) -> None:
    code = product(env)
    merchant_id = borrower_with(env, "credit_bureau", "scoring", merchant=True)
    env.travel(date(2025, 6, 2))  # the day after the sample's last weekly period
    body = application(
        merchant_id, code, employment="merchant", social_metrics=sample("social.json")
    )
    r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key("soc0")})
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "purpose" and "social_commerce_data" in r.json()["detail"]

    consent(env, merchant_id, "social_commerce_data")
    r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key("soc1")})
    assert r.status_code == 201, r.text
    explain = env.client.get(f"/v1/applications/{r.json()['id']}/explain", headers=env.admin)
    assert explain.status_code == 200 and explain.json()["record_hash_ok"] is True
    record = explain.json()["record"]
    features = record["features"]
    assert features["merchant"] is True and record["inputs"]["social_metrics_sent"] is True
    assert features["social_platform"] == "douyin" and features["social_granularity"] == "weekly"
    assert features["social_followers"] == 17800  # the last period, 2025-06-01
    assert features["social_days_since_update"] == 1 and features["social_stale"] is False
    # GMV over the 30 days to 2025-06-01: the weekly periods dated 05-04 .. 06-01 (hand sum)
    assert Decimal(str(features["social_gmv_30d"])) == Decimal("38893.00") + Decimal(
        "41385.00"
    ) + Decimal("43877.00") + Decimal("41741.00") + Decimal("44233.00")
    assert features["social_comments_scored"] == 6  # the blank comment is not scored


def test_id_card_image_is_read_and_cross_checked(env: Env) -> None:
    """The applicant's drawn ID card matches what was registered; someone else's card is
    a mismatch, which the default policy refers (RF_ID_MISMATCH)."""
    import base64

    from tests.ocr_cards import Person, draw_card, png_bytes, require_cjk_font

    font = require_cjk_font()
    code = product(env)
    number = new_id_number(date(1990, 1, 1))
    borrower_id = borrower_with(
        env, "credit_bureau", "scoring", "identity_verification", id_number=number
    )
    mine = Person("李四", "男", "汉", date(1990, 1, 1), "北京市朝阳区建国路88号", number)
    other = Person("王五", "男", "汉", date(1990, 1, 1), "北京市朝阳区建国路88号", number)

    def submit(card: Person, name: str) -> dict[str, Any]:
        image = base64.b64encode(png_bytes(draw_card(card, font_path=font))).decode()
        body = application(borrower_id, code, id_card_image_base64=image)
        r = env.client.post("/v1/applications", json=body, headers={**env.admin, **key(name)})
        assert r.status_code == 201, r.text
        return dict(r.json())

    good = submit(mine, "ocr-match")
    record = env.client.get(f"/v1/applications/{good['id']}/explain", headers=env.admin).json()
    check = record["record"]["checks"]["id_card"]
    assert check["fields"]["name"] == check["fields"]["id_number"] == "match"
    assert check["mismatch"] is False and good["decision"] == "approve"
    assert number not in json.dumps(record)  # the full ID number never appears

    bad = submit(other, "ocr-mismatch")
    assert bad["decision"] == "refer"
    assert "RF_ID_MISMATCH" in [x["code"] for x in bad["reasons"]]
