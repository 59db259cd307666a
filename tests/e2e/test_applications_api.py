"""Applications over HTTP: consent problem, borrower -> consents -> application -> approve ->
acceptance -> loan on the offered terms; explain for operators; immutable decision records."""

from __future__ import annotations

import json
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

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.db.session import session_factory, unit_of_work
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
    with TestClient(app) as client:
        assert app.state.models is not None  # loaded at startup
        yield Env(
            client,
            app,
            bureau_dir,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {viewer}"},
        )
    app.state.engine.dispose()


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": f"{name}-{new_phone()}"}


def borrower_with(env: Env, *purposes: str) -> int:
    number = new_id_number(date(1990, 1, 1))
    r = env.client.post(
        "/v1/borrowers",
        json={"name": "李四", "id_number": number, "phone": new_phone()},
        headers=env.admin,
    )
    assert r.status_code == 201, r.text
    borrower_id = int(r.json()["id"])
    for purpose in purposes:
        c = env.client.post(
            f"/v1/borrowers/{borrower_id}/consents",
            json={"purpose": purpose, "scope": "loan application", "text_version": "v1"},
            headers=env.admin,
        )
        assert c.status_code == 201, c.text
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
