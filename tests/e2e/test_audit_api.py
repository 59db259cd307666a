"""The audit trail through the real app: operators' requests and row changes with before and
after values, refused attempts (401, 403), masked personal data, personal-data reads, and the
admin-only query route."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobilend.api.audit_api import client_address
from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.db.session import unit_of_work
from mobilend.origination.service import cipher_from_settings
from mobilend.settings import Settings
from tests.e2e.conftest import Api
from tests.integration.test_borrowers import new_id_number, new_phone

pytestmark = pytest.mark.integration


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _officer(api: Api, name: str) -> dict[str, str]:
    app: Any = api.client.app
    with unit_of_work(app.state.sessions) as session:
        _, token = create_credential(session, name=name, role="officer")
    return {"Authorization": f"Bearer {token}"}


def _events(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get("/v1/audit-events", params={"limit": 1000, **params}, headers=api.admin)
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _last_id(api: Api) -> int:
    """The newest event's id: the PostgreSQL database is shared by the worker's tests."""
    newest = _events(api, limit=1)
    return newest[0]["id"] if newest else 0


def _only(events: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [e for e in events if all(e[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_operator_actions_changes_and_refusals(api: Api) -> None:
    start = _last_id(api)
    officer = _officer(api, "test-officer")
    code = f"P{uuid.uuid4().hex[:8]}"
    r = api.client.post("/v1/products", json={"code": code, "name": "x"}, headers=api.admin)
    assert r.status_code == 201, r.text
    product_request = r.headers["X-Request-Id"]
    body = {"product_code": code, "principal": "1000", "periods": 2, "start_date": "2025-01-10"}
    r = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()})
    assert r.status_code == 201, r.text
    loan_id, loan_request = r.json()["id"], r.headers["X-Request-Id"]
    api.set_today(2025, 1, 10)
    r = api.client.post(
        f"/v1/loans/{loan_id}/disbursements", json={}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 201, r.text
    disburse_request = r.headers["X-Request-Id"]
    api.set_today(2025, 2, 10)
    key = _key()
    r = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "507.51"}, headers={**api.admin, **key}
    )
    assert r.status_code == 201, r.text
    repay_request = r.headers["X-Request-Id"]
    replay = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "507.51"}, headers={**api.admin, **key}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    # Refused: an officer lacks products:write; no credential; an unknown token.
    forbidden = api.client.post("/v1/products", json={"code": "X9", "name": "x"}, headers=officer)
    assert forbidden.status_code == 403
    missing = api.client.post("/v1/products", json={"code": "X9", "name": "x"})
    assert missing.status_code == 401
    bad = api.client.get("/v1/products", headers={"Authorization": "Bearer mlk_not-a-token"})
    assert bad.status_code == 401
    # A viewer cannot read the trail, and the refusal is itself in it.
    viewer_try = api.client.get("/v1/audit-events", headers=api.viewer)
    assert viewer_try.status_code == 403
    assert api.client.get("/v1/audit-events", headers=officer).status_code == 403

    events = _events(api, after_id=start)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)  # newest first

    # One request row per state-changing request: who, role, where from, route, status.
    made = _only(events, kind="request", correlation_id=product_request)
    assert made["action"] == "POST /v1/products" and made["status_code"] == 201
    assert (made["actor"], made["role"], made["permission"]) == (
        "test-admin",
        "admin",
        "products:write",
    )
    assert (made["ip"], made["user_agent"], made["outcome"]) == ("testclient", "testclient", "ok")
    assert made["source"] == "api" and made["path"] == "/v1/products"
    repaid = _only(events, kind="request", correlation_id=repay_request)
    assert repaid["action"] == "POST /v1/loans/{loan_id}/repayments"
    assert repaid["path"] == f"/v1/loans/{loan_id}/repayments"
    replayed = _only(events, kind="request", correlation_id=replay.headers["X-Request-Id"])
    assert replayed["detail"] == {"replayed": True} and replayed["status_code"] == 201
    assert not [e for e in events if e["correlation_id"] == replay.headers["X-Request-Id"]][1:]

    # The loan and its schedule, as booked. 1000 at 12% a year over 2 months: level payment
    # 1000 * 0.01 / (1 - 1.01**-2) = 507.5124 -> 507.51; month 1 interest 1000 * 1% = 10.00,
    # principal 507.51 - 10.00 = 497.51; month 2 principal 1000 - 497.51 = 502.49, interest
    # 502.49 * 1% = 5.0249 -> 5.02.
    booked = [e for e in events if e["correlation_id"] == loan_request and e["kind"] == "change"]
    loan = _only(booked, table="loans", record_id=str(loan_id))
    assert loan["action"] == "insert"
    assert loan["changes"]["principal"] == {"before": None, "after": "1000.00"}
    assert loan["changes"]["status"] == {"before": None, "after": "approved"}
    assert loan["actor"] == "test-admin" and loan["route"] == "/v1/loans"
    schedule = sorted(
        (e["changes"]["number"]["after"], e["changes"]["principal"]["after"])
        for e in booked
        if e["table"] == "installments"
    )
    assert schedule == [(1, "497.51"), (2, "502.49")]
    first = next(
        e["record_id"]
        for e in booked
        if e["table"] == "installments" and e["changes"]["number"]["after"] == 1
    )
    disbursed = [e for e in events if e["correlation_id"] == disburse_request]
    status = _only(disbursed, table="loans", action="update")["changes"]["status"]
    assert status == {"before": "approved", "after": "active"}

    # The repayment: one change row per record, first before and last after value.
    paid = [e for e in events if e["correlation_id"] == repay_request and e["kind"] == "change"]
    installment = _only(paid, table="installments", record_id=first)
    assert installment["action"] == "update"
    assert installment["changes"] == {
        "interest_accrued": {"before": "0.00", "after": "10.00"},  # 31 days: a whole month
        "paid_interest": {"before": "0.00", "after": "10.00"},
        "paid_principal": {"before": "0.00", "after": "497.51"},  # 507.51 - 10.00
    }
    repayment = _only(paid, table="repayments")
    assert repayment["action"] == "insert"
    assert repayment["changes"]["amount"] == {"before": None, "after": "507.51"}
    assert repayment["changes"]["unallocated"] == {"before": None, "after": "0.00"}
    entries = {
        e["changes"]["kind"]["after"]: e["detail"]["lines"]
        for e in paid
        if e["table"] == "journal_entries"
    }
    # Debit cash 507.51; credit the receivables: interest 10.00, principal 497.51.
    assert entries["repayment"] == [
        ["cash", loan_id, "CNY", "507.51"],
        ["interest_receivable", loan_id, "CNY", "-10.00"],
        ["principal_receivable", loan_id, "CNY", "-497.51"],
    ]
    assert _only(paid, table="loans")["changes"] == {
        "accrued_through": {"before": "2025-01-10", "after": "2025-02-10"}
    }
    assert all(e["table"] not in ("idempotency_records", "log_pending") for e in events)

    # Refused attempts: one row each, in the trail although the requests failed.
    denied = _only(events, correlation_id=forbidden.headers["X-Request-Id"])
    assert denied["kind"] == "auth" and denied["outcome"] == "forbidden"
    assert denied["status_code"] == 403 and denied["action"] == "POST /v1/products"
    assert (denied["actor"], denied["role"], denied["permission"]) == (
        "test-officer",
        "officer",
        "products:write",
    )
    assert denied["ip"] == "testclient"
    anonymous = _only(events, correlation_id=missing.headers["X-Request-Id"])
    assert anonymous["outcome"] == "unauthenticated" and anonymous["status_code"] == 401
    assert anonymous["actor"] is None and anonymous["detail"] == {"reason": "missing-credential"}
    unknown = _only(events, correlation_id=bad.headers["X-Request-Id"])
    assert unknown["action"] == "GET /v1/products" and unknown["ip"] == "testclient"
    assert unknown["detail"] == {
        "reason": "unknown-credential",
        "token_sha256_prefix": hashlib.sha256(b"mlk_not-a-token").hexdigest()[:12],
    }
    viewer_denied = _only(events, correlation_id=viewer_try.headers["X-Request-Id"])
    assert (viewer_denied["actor"], viewer_denied["permission"]) == ("test-viewer", "audit:read")
    everything = json.dumps(events)
    assert "mlk_not-a-token" not in everything
    assert api.admin["Authorization"][7:] not in everything
    # Plain reads leave nothing: no row for the admin's GETs of the trail or products.
    assert not [e for e in events if e["method"] == "GET" and e["kind"] != "auth"]


def test_filters_and_keyset_pagination(api: Api) -> None:
    name = f"officer-{uuid.uuid4().hex[:8]}"
    officer = _officer(api, name)
    for n in range(3):
        api.client.post("/v1/products", json={"code": f"Y{n}", "name": "y"}, headers=officer)
    mine = _events(api, actor=name, outcome="forbidden")
    assert len(mine) == 3 and {e["kind"] for e in mine} == {"auth"}
    page1 = api.client.get(
        "/v1/audit-events",
        params={"actor": name, "order": "asc", "limit": 2},
        headers=api.admin,
    ).json()
    assert [e["id"] for e in page1["events"]] == sorted(e["id"] for e in mine)[:2]
    page2 = api.client.get(
        "/v1/audit-events",
        params={"actor": name, "order": "asc", "limit": 2, **page1["next"]},
        headers=api.admin,
    ).json()
    assert [e["id"] for e in page2["events"]] == [max(e["id"] for e in mine)]
    assert page2["next"] is None
    newest = api.client.get(
        "/v1/audit-events", params={"actor": name, "limit": 2}, headers=api.admin
    ).json()
    assert set(newest["next"]) == {"before_id"}
    assert _events(api, actor=name, action="POST /v1/products", kind="auth") == mine
    assert _events(api, actor=name, since="2999-01-01T00:00:00Z") == []
    assert len(_events(api, actor=name, until="2999-01-01T00:00:00")) == 3
    r = api.client.get("/v1/audit-events", params={"outcome": "maybe"}, headers=api.admin)
    assert r.status_code == 422 and r.json()["field"] == "outcome"


def test_borrower_personal_data_is_masked_and_reads_are_recorded(
    api: Api, db_url: str, tmp_path: Path
) -> None:
    start = _last_id(api)
    app: Any = api.client.app
    app.state.pii = cipher_from_settings(Settings(database_url=db_url, data_dir=tmp_path))
    number, phone = new_id_number(), new_phone()
    person = {
        "name": "张三丰",
        "id_number": number,
        "phone": phone,
        "bank_card": "6200 0000 0000 0005",
        "address": "北京市朝阳区建国路88号",
    }
    r = api.client.post("/v1/borrowers", json=person, headers=api.admin)
    assert r.status_code == 201, r.text
    borrower_id, registered = r.json()["id"], r.headers["X-Request-Id"]
    row = _only(_events(api, table="borrowers", record_id=str(borrower_id)), kind="change")
    assert row["correlation_id"] == registered and row["action"] == "insert"
    changed = {"changed": True}
    for column in (
        "name_enc",
        "id_number_enc",
        "id_number_index",
        "phone_enc",
        "phone_index",
        "bank_card_enc",
        "address_enc",
        "birth_date",
        "gender",
    ):
        assert row["changes"][column] == changed, column
    assert row["changes"]["kind"] == {"before": None, "after": "person"}
    trail = json.dumps(_events(api, after_id=start), ensure_ascii=False)
    for secret in ("张三丰", number, phone, "6200", "建国路"):
        assert secret not in trail

    # Reads of personal data: who looked at which borrower (plain reads are not recorded).
    got = api.client.get(f"/v1/borrowers/{borrower_id}", headers=api.viewer)
    assert got.status_code == 200
    found = api.client.post("/v1/borrowers/search", json={"phone": phone}, headers=api.viewer)
    assert [b["id"] for b in found.json()["borrowers"]] == [borrower_id]
    plain_read = api.client.get("/v1/products", headers=api.viewer)
    reads = _events(api, kind="read", table="borrowers", record_id=str(borrower_id))
    assert [(e["action"], e["actor"], e["role"], e["detail"]) for e in reads] == [
        ("POST /v1/borrowers/search", "test-viewer", "viewer", {"borrower_ids": [borrower_id]}),
        (
            "GET /v1/borrowers/{borrower_id}",
            "test-viewer",
            "viewer",
            {"borrower_ids": [borrower_id]},
        ),
    ]
    assert [e["correlation_id"] for e in reads] == [
        found.headers["X-Request-Id"],
        got.headers["X-Request-Id"],
    ]
    assert _events(api, correlation_id=plain_read.headers["X-Request-Id"]) == []
    # Looking for a borrower who is not there is a read too (of the id asked for).
    missing = api.client.get("/v1/borrowers/987654321", headers=api.viewer)
    assert missing.status_code == 404
    (tried,) = _events(api, correlation_id=missing.headers["X-Request-Id"])
    assert (tried["kind"], tried["outcome"], tried["status_code"]) == ("read", "refused", 404)
    assert (tried["record_id"], tried["detail"]) == ("987654321", {"borrower_ids": []})


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoofed = {**api.admin, "X-Forwarded-For": "203.0.113.9"}
    r = api.client.post("/v1/products", json={"code": "F1", "name": "f"}, headers=spoofed)
    row = _only(_events(api, kind="request"), correlation_id=r.headers["X-Request-Id"])
    assert row["ip"] == "testclient"  # the default trusts no proxy

    monkeypatch.setenv("MOBILEND_AUDIT_TRUSTED_PROXIES", '["testclient"]')
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as client:
        r = client.post(
            "/v1/products",
            json={"code": "F2", "name": "f"},
            headers={**api.admin, "X-Forwarded-For": "198.51.100.7, testclient"},
        )
    app.state.engine.dispose()
    row = _only(_events(api, kind="request"), correlation_id=r.headers["X-Request-Id"])
    assert row["ip"] == "198.51.100.7"


def test_client_address() -> None:
    def scope(peer: str, forwarded: str | None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 5000), "headers": headers}

    proxies = frozenset({"10.0.0.2", "10.0.0.3"})
    assert client_address(scope("192.0.2.1", "203.0.113.9"), proxies) == "192.0.2.1"
    assert client_address(scope("10.0.0.2", "203.0.113.9"), proxies) == "203.0.113.9"
    # The rightmost hop that is no proxy of ours; what the client claimed before it is ignored.
    chain = "1.1.1.1, 203.0.113.9, 10.0.0.3"
    assert client_address(scope("10.0.0.2", chain), proxies) == "203.0.113.9"
    assert client_address(scope("10.0.0.2", None), proxies) == "10.0.0.2"
    assert client_address(scope("10.0.0.2", "203.0.113.9"), frozenset()) == "10.0.0.2"
