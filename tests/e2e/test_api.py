"""HTTP through the real app: products, quotes, loans, payments, idempotency, problems, auth."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import Api

pytestmark = pytest.mark.integration


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _product(api: Api, **config: str) -> str:
    code = f"P{uuid.uuid4().hex[:8]}"
    body = {
        "code": code,
        "name": "Phone loan 手机贷",
        "config": {"penalty_rate_pct": "18", **config},
    }
    r = api.client.post("/v1/products", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    return code


def test_quote_has_schedule_and_both_irr_figures(api: Api) -> None:
    code = _product(api)
    body = {"product_code": code, "principal": "5000", "periods": 18, "start_date": "2022-11-01"}
    loans_before = api.client.get("/v1/loans", headers=api.viewer).json()
    r = api.client.post("/v1/quotes", json=body, headers=api.viewer)
    assert r.status_code == 200, r.text
    q = r.json()
    # 5000 * 0.01 / (1 - 1.01**-18) = 304.9099 -> 304.91 (level installment, 12% a year)
    assert q["installments"][0]["total"] == "304.91"
    assert q["installments"][0]["due_date"] == "2022-12-01"
    # No fees: the IRR is the nominal rate, 12% simple; compound 1.01**12 - 1 = 12.6825%.
    assert q["apr"]["irr_simple_pct"].startswith("12.00")
    assert q["apr"]["irr_compound_pct"].startswith("12.68")
    # A quote stores nothing.
    assert api.client.get("/v1/loans", headers=api.viewer).json() == loans_before


def test_loan_life_over_http_with_idempotency(api: Api) -> None:
    code = _product(api)
    body = {"product_code": code, "principal": "1200", "periods": 3, "start_date": "2025-01-15"}
    r = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()})
    assert r.status_code == 201, r.text
    loan_id = r.json()["id"]
    r = api.client.post(
        f"/v1/loans/{loan_id}/disbursements", json={}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 201, r.text
    assert r.json()["loan"]["balances"]["principal"] == "1200.00"

    api.set_today(2025, 2, 15)
    key = _key()
    pay = {"amount": "408.03", "reference": "bank-123"}
    first = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json=pay, headers={**api.admin, **key}
    )
    assert first.status_code == 201, first.text
    again = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json=pay, headers={**api.admin, **key}
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "1.00"}, headers={**api.admin, **key}
    )
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["field"] == "Idempotency-Key"

    st = api.client.get(f"/v1/loans/{loan_id}/statement", headers=api.viewer).json()
    # 1200 - 396.03 principal of installment 1 (interest 12.00 paid first)
    assert st["balances"]["principal"] == "803.97"
    assert len([r for r in st["repayments"] if r["status"] == "posted"]) == 1
    entries = api.client.get(f"/v1/loans/{loan_id}/entries", headers=api.viewer).json()
    assert [e["kind"] for e in entries] == ["disbursement", "accrual", "repayment"]
    for e in entries:
        assert sum(float(line["amount"]) * 100 for line in e["lines"]) == 0

    rep_id = first.json()["result"]["repayment_id"]
    rev = api.client.post(
        f"/v1/repayments/{rep_id}/reversals", json={}, headers={**api.admin, **_key()}
    )
    assert rev.status_code == 201, rev.text
    assert rev.json()["loan"]["balances"]["principal"] == "1200.00"

    payoff = api.client.get(f"/v1/loans/{loan_id}/payoff", headers=api.viewer).json()
    # Installment 1 due in full (408.03); nothing of #2 accrued on its first day; 803.97 ahead.
    assert payoff["total"] == "1212.00"
    r = api.client.post(
        f"/v1/loans/{loan_id}/prepayments", json={}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 201, r.text
    assert r.json()["loan"]["status"] == "closed"
    tb = api.client.get("/v1/ledger/trial-balance", headers=api.viewer).json()
    assert tb["balanced"] is True


def test_problems_name_the_field(api: Api) -> None:
    code = _product(api, max_principal="5000")
    body = {"product_code": code, "principal": "9000", "periods": 3, "start_date": "2025-01-15"}
    r = api.client.post("/v1/quotes", json=body, headers=api.viewer)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "principal"
    assert r.json()["rule"] == "product-range"

    r = api.client.post("/v1/quotes", json={**body, "principal": 12.5}, headers=api.viewer)
    assert r.status_code == 422
    assert r.json()["field"] == "principal"

    r = api.client.post("/v1/quotes", json={**body, "principal": "-1"}, headers=api.viewer)
    assert r.status_code == 422 and r.json()["field"] == "principal"

    loan = api.client.post(
        "/v1/loans", json={**body, "principal": "1000"}, headers={**api.admin, **_key()}
    ).json()
    r = api.client.post(
        f"/v1/loans/{loan['id']}/repayments", json={"amount": "10"}, headers=api.admin
    )
    assert r.status_code == 400 and r.json()["field"] == "Idempotency-Key"
    r = api.client.post(
        f"/v1/loans/{loan['id']}/repayments", json={"amount": "10"}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 409 and r.json()["field"] == "loan_id"
    r = api.client.get("/v1/loans/999999", headers=api.viewer)
    assert r.status_code == 404


def test_every_route_needs_a_credential_and_permission(api: Api) -> None:
    r = api.client.get("/v1/products")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = api.client.get("/v1/products", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = api.client.post("/v1/products", json={"code": "X1", "name": "x"}, headers=api.viewer)
    assert r.status_code == 403
    # Every route of every domain router declares exactly one known permission.
    from mobilend.api.auth import PERMISSIONS
    from mobilend.app import ROUTERS

    routes = [route for router in ROUTERS for route in router.routes]
    assert len(routes) >= 30
    for route in routes:
        perms = [getattr(dep.call, "permission", None) for dep in route.dependant.dependencies]
        declared = [p for p in perms if p is not None]
        assert len(declared) == 1 and declared[0] in PERMISSIONS, route.path


def test_overpayment_is_held_then_refunded(api: Api) -> None:
    code = _product(api)
    body = {"product_code": code, "principal": "1000", "periods": 2, "start_date": "2025-01-10"}
    loan_id = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()}).json()["id"]
    api.set_today(2025, 1, 10)
    api.client.post(f"/v1/loans/{loan_id}/disbursements", json={}, headers={**api.admin, **_key()})
    api.set_today(2025, 2, 10)
    # Installment 1: 1000 at 1% a month over 2 months -> level 507.51 (interest 10.00).
    r = api.client.post(
        f"/v1/loans/{loan_id}/repayments",
        json={"amount": "600.00"},
        headers={**api.admin, **_key()},
    )
    assert r.json()["result"]["unallocated"] == "92.49"  # 600.00 - 507.51
    assert r.json()["loan"]["credit_balance"] == "92.49"
    too_much = api.client.post(
        f"/v1/loans/{loan_id}/refunds", json={"amount": "100"}, headers={**api.admin, **_key()}
    )
    assert too_much.status_code == 422 and too_much.json()["field"] == "amount"
    r = api.client.post(f"/v1/loans/{loan_id}/refunds", json={}, headers={**api.admin, **_key()})
    assert r.status_code == 201, r.text
    assert r.json()["loan"]["credit_balance"] == "0.00"
    # cash: -1000 + 600 - 92.49
    entries = api.client.get(f"/v1/loans/{loan_id}/entries", headers=api.viewer).json()
    assert entries[-1]["kind"] == "refund"
    future = api.client.post(
        f"/v1/loans/{loan_id}/repayments",
        json={"amount": "1.00", "value_date": "2025-03-01"},
        headers={**api.admin, **_key()},
    )
    assert future.status_code == 422 and future.json()["field"] == "value_date"


def test_product_settings_are_checked_when_the_product_is_made(api: Api) -> None:
    body = {"code": "BADWF", "name": "x", "config": {"waterfall": "fee,interest"}}
    r = api.client.post("/v1/products", json=body, headers=api.admin)
    assert r.status_code == 422 and r.json()["field"] == "config.waterfall"
    body = {"code": "BADCAL", "name": "x", "config": {"calendar": "XX"}}
    r = api.client.post("/v1/products", json=body, headers=api.admin)
    assert r.status_code == 422 and r.json()["field"] == "config.calendar"


def test_reversal_reason_is_kept_on_the_entry(api: Api) -> None:
    code = _product(api)
    body = {"product_code": code, "principal": "1000", "periods": 2, "start_date": "2025-01-10"}
    loan_id = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()}).json()["id"]
    api.set_today(2025, 1, 10)
    api.client.post(f"/v1/loans/{loan_id}/disbursements", json={}, headers={**api.admin, **_key()})
    api.set_today(2025, 2, 10)
    r = api.client.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "50.00"}, headers={**api.admin, **_key()}
    )
    rep_id = r.json()["result"]["repayment_id"]
    r = api.client.post(
        f"/v1/repayments/{rep_id}/reversals",
        json={"reason": "bounced transfer"},
        headers={**api.admin, **_key()},
    )
    assert r.status_code == 201
    entries = api.client.get(f"/v1/loans/{loan_id}/entries", headers=api.viewer).json()
    assert entries[-1]["kind"] == "reversal"
    assert "bounced transfer" in entries[-1]["description"]
    repayment_entry = next(e for e in entries if e["kind"] == "repayment")
    assert entries[-1]["reverses_id"] == repayment_entry["id"]
    amounts = {ln["account"]: ln["amount"] for ln in entries[-1]["lines"]}
    assert amounts["cash"] == "-50.00"
