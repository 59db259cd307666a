"""Borrowers and consents over HTTP: masked output, problems naming the field, duplicates,
permissions, and no personal data in responses, URLs or stored rows."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.db.session import session_factory, unit_of_work
from mobilend.settings import Settings
from tests.e2e.conftest import Api
from tests.integration.test_borrowers import new_id_number, new_phone

pytestmark = pytest.mark.integration

KEY = base64.b64encode(bytes(range(32))).decode()
INDEX = base64.b64encode(bytes(range(64, 96))).decode()


@dataclass
class BorrowerApi(Api):
    officer: dict[str, str] = field(default_factory=dict)


def _app(db_url: str, settings: Settings) -> Iterator[BorrowerApi]:
    clock = FixedClock(datetime(2025, 1, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    app = create_app(settings, clock=clock)
    tokens = {}
    with unit_of_work(session_factory(app.state.engine)) as session:
        for role in ("admin", "viewer", "officer"):
            tokens[role] = create_credential(session, name=f"test-{role}", role=role)[1]
    with TestClient(app) as client:
        yield BorrowerApi(
            client,
            clock,
            *(
                {"Authorization": f"Bearer {tokens[role]}"}
                for role in ("admin", "viewer", "officer")
            ),
        )
    app.state.engine.dispose()


@pytest.fixture
def bapi(db_url: str, tmp_path: Path) -> Iterator[BorrowerApi]:
    """The app with configured keys (as in production); data_dir is a temporary directory."""
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        pii_keys={"k1": KEY},  # type: ignore[arg-type]
        pii_index_key=INDEX,  # type: ignore[arg-type]
    )
    yield from _app(db_url, settings)


def _person(**over: str) -> dict[str, str]:
    return {
        "name": "张三",
        "id_number": new_id_number(),
        "phone": new_phone(),
        "bank_card": "6200 0000 0000 0005",
        "address": "北京市朝阳区建国路88号",
        **over,
    }


def _problem(r, status: int, field: str, rule: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict = r.json()
    assert body["field"] == field, body
    if rule is not None:
        assert body["rule"] == rule, body
    return body


def test_register_masks_everything(bapi: BorrowerApi) -> None:
    body = _person()
    r = bapi.client.post("/v1/borrowers", json=body, headers=bapi.officer)
    assert r.status_code == 201, r.text
    out = r.json()
    number, phone = body["id_number"], body["phone"]
    assert out["id_number"] == number[:6] + "********" + number[-4:]
    assert out["phone"] == phone[:3] + "****" + phone[-4:]
    assert out["name"] == "张*"
    assert out["bank_card"] == "**** 0005"
    assert out["address"] == "北京市朝阳区****"
    assert out["kind"] == "person" and out["uscc"] is None and out["key_id"] == "k1"
    born = datetime.strptime(number[6:14], "%Y%m%d").date()
    assert out["age"] == 2025 - born.year - ((born.month, born.day) > (1, 15))
    assert out["gender"] == ("male" if int(number[16]) % 2 else "female")
    assert "birth_date" not in out
    for secret in (number, phone, "张三", "6200000000000005", "建国路"):
        assert secret not in r.text

    got = bapi.client.get(f"/v1/borrowers/{out['id']}", headers=bapi.viewer)
    assert got.status_code == 200 and got.json() == out
    found = bapi.client.post(
        "/v1/borrowers/search", json={"id_number": number.lower()}, headers=bapi.viewer
    )
    assert found.status_code == 200 and found.json() == {"borrowers": [out]}
    by_phone = bapi.client.post("/v1/borrowers/search", json={"phone": phone}, headers=bapi.viewer)
    assert [b["id"] for b in by_phone.json()["borrowers"]] == [out["id"]]
    none = bapi.client.post(
        "/v1/borrowers/search", json={"id_number": new_id_number()}, headers=bapi.viewer
    )
    assert none.json() == {"borrowers": []}
    _problem(
        bapi.client.post(
            "/v1/borrowers/search", json={"id_number": number, "phone": phone}, headers=bapi.viewer
        ),
        422,
        "body",
        "one-field",
    )

    # Stored rows hold no plaintext either.
    with unit_of_work(bapi.client.app.state.sessions) as session:  # type: ignore[attr-defined]
        row = session.execute(text("SELECT * FROM borrowers WHERE id = :i"), {"i": out["id"]})
        raw = json.dumps([str(v) for v in row.one()], ensure_ascii=False)
    for secret in (number, phone, "张三", "6200000000000005", "建国路"):
        assert secret not in raw


def test_problems_name_the_field(bapi: BorrowerApi) -> None:
    post = lambda body: bapi.client.post("/v1/borrowers", json=body, headers=bapi.admin)  # noqa: E731
    bad_id = "11010519491231003X"  # the GB 11643 sample with one digit changed
    _problem(post(_person(id_number=bad_id)), 422, "id_number", "checksum")
    _problem(post(_person(phone="12345")), 422, "phone", "invalid")
    _problem(post(_person(bank_card="6200000000000006")), 422, "bank_card", "checksum")
    _problem(
        post(_person(id_number=new_id_number(birth=date(2010, 1, 1)))), 422, "id_number", "min-age"
    )
    body = _problem(post({**_person(), "nickname": "x"}), 422, "nickname", "extra_forbidden")
    missing = _person()
    del missing["phone"]
    _problem(post(missing), 422, "phone", "missing")
    # Problems never echo the input (domain rules, and shape errors from the body model).
    secret = new_id_number()
    r = post(_person(id_number=secret, phone="13800000000zz"))
    assert r.status_code == 422 and secret not in r.text and "13800000000" not in r.text
    r = post(_person(id_number=secret * 3))
    _problem(r, 422, "id_number", "string_too_long")
    assert secret not in r.text
    assert body["type"].endswith("/validation-failed")


def test_duplicate_is_a_409_naming_the_field(bapi: BorrowerApi) -> None:
    body = _person()
    assert bapi.client.post("/v1/borrowers", json=body, headers=bapi.admin).status_code == 201
    again = {**body, "id_number": body["id_number"].lower(), "name": "李四", "phone": new_phone()}
    r = bapi.client.post("/v1/borrowers", json=again, headers=bapi.admin)
    problem = _problem(r, 409, "id_number", "duplicate")
    assert body["id_number"] not in r.text and problem["type"].endswith("/conflict")


def test_permissions(bapi: BorrowerApi) -> None:
    body = _person()
    assert bapi.client.post("/v1/borrowers", json=body).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert bapi.client.post("/v1/borrowers", json=body, headers=bad).status_code == 401
    _problem_status = bapi.client.post("/v1/borrowers", json=body, headers=bapi.viewer)
    assert _problem_status.status_code == 403
    assert _problem_status.headers["content-type"].startswith("application/problem+json")
    borrower_id = bapi.client.post("/v1/borrowers", json=body, headers=bapi.officer).json()["id"]
    consent = {"purpose": "scoring", "scope": "评分 scoring", "text_version": "v1"}
    url = f"/v1/borrowers/{borrower_id}/consents"
    assert bapi.client.post(url, json=consent, headers=bapi.viewer).status_code == 403
    assert bapi.client.get(f"/v1/borrowers/{borrower_id}").status_code == 401
    assert bapi.client.get(url, headers=bapi.viewer).status_code == 200
    assert bapi.client.post(url, json=consent, headers=bapi.officer).status_code == 201
    r = bapi.client.get("/v1/borrowers/999999999", headers=bapi.viewer)
    _problem(r, 404, "borrower_id")
    # No route takes personal data in its path or query.
    for route in bapi.client.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path.startswith("/v1/borrowers"):
            params = [p.name for p in route.dependant.path_params + route.dependant.query_params]
            assert set(params) <= {"borrower_id", "consent_id"}, path


def test_consents_over_http(bapi: BorrowerApi) -> None:
    borrower_id = bapi.client.post("/v1/borrowers", json=_person(), headers=bapi.admin).json()["id"]
    url = f"/v1/borrowers/{borrower_id}/consents"
    body = {
        "purpose": "credit_bureau",
        "scope": "授权查询个人征信报告 query my credit report for this application",
        "text_version": "credit-2025-01",
        "channel": "app",
        "ip": "203.0.113.9",
    }
    r = bapi.client.post(url, json=body, headers=bapi.admin)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["sensitive"] is True and c["active"] is True and c["ip_recorded"] is True
    assert "203.0.113.9" not in r.text
    assert datetime.fromisoformat(c["granted_at"]) == bapi.clock.now()
    _problem(
        bapi.client.post(url, json={**body, "purpose": "x"}, headers=bapi.admin),
        422,
        "purpose",
        "known-purpose",
    )
    _problem(
        bapi.client.post(url, json={**body, "sensitive": False}, headers=bapi.admin),
        422,
        "sensitive",
        "separate-consent",
    )
    _problem(bapi.client.post(url, json={**body, "ip": "999.1.1.1"}, headers=bapi.admin), 422, "ip")

    bapi.set_today(2025, 2, 1)
    w = bapi.client.post(f"{url}/{c['id']}/withdrawal", headers=bapi.admin)
    assert w.status_code == 200, w.text
    assert w.json()["active"] is False
    assert datetime.fromisoformat(w.json()["withdrawn_at"]) == bapi.clock.now()
    _problem(
        bapi.client.post(f"{url}/{c['id']}/withdrawal", headers=bapi.admin),
        409,
        "consent_id",
        "already-withdrawn",
    )
    _problem(bapi.client.post(f"{url}/999999/withdrawal", headers=bapi.admin), 404, "consent_id")
    listed = bapi.client.get(url, headers=bapi.viewer).json()
    assert [(x["id"], x["active"]) for x in listed] == [(c["id"], False)]


def test_zero_config_keys_are_generated_in_data_dir(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "var")
    for api in _app(db_url, settings):
        assert not (tmp_path / "var" / "pii-keys.json").exists()  # made on first use only
        r = api.client.post("/v1/borrowers", json=_person(), headers=api.admin)
        assert r.status_code == 201, r.text
        keys = tmp_path / "var" / "pii-keys.json"
        assert keys.stat().st_mode & 0o777 == 0o600
        got = api.client.get(f"/v1/borrowers/{r.json()['id']}", headers=api.viewer)
        assert got.json() == r.json()
