"""The collateral API end to end: catalog, price feed, valuation, pledge, mark-to-market.

The test uses the Xiaomi 14 (256 GB), which no other test prices, so the shared database's
other rows cannot move its market price. Figures are worked out by hand in the comments.
"""

from __future__ import annotations

import uuid

from tests.e2e.conftest import Api


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _imei(first14: str) -> str:
    """Append the Luhn check digit (every second digit from the left doubled)."""
    total = 0
    for i, ch in enumerate(first14):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return first14 + str((10 - total % 10) % 10)


CONDITION = {"screen": "minor_wear", "body": "flawless", "battery_health_pct": 90}
QUOTES = """model_key,storage_gb,grade,price,quoted_on,source
xiaomi-14,256,excellent,2400,2025-01-10,shop-a
xiaomi-14,256,excellent,2500,2025-01-12,shop-b
xiaomi-14,256,excellent,2600,2025-01-14,shop-c
"""


def test_pledge_lifecycle_over_http(api: Api) -> None:
    admin = api.admin
    r = api.client.post("/v1/catalog/imports", json={"seed": True}, headers=admin)
    assert r.status_code == 201
    r = api.client.post(
        "/v1/catalog/identify", json={"imei": _imei("35657310123456")}, headers=admin
    )
    assert r.json()["key"] == "apple-iphone-11"  # TAC 35657310 (Osmocom TAC database)
    r = api.client.post("/v1/price-quotes/imports", json={"data": QUOTES}, headers=admin)
    assert r.json() == {"received": 3, "added": 3, "skipped": 0}
    r = api.client.post("/v1/price-quotes/imports", json={"data": QUOTES}, headers=admin)
    assert r.json() == {"received": 3, "added": 0, "skipped": 3}  # importing again: no change

    code = f"C{uuid.uuid4().hex[:8]}"
    config = {"annual_rate_pct": "0", "schedule": "equal_principal"}
    r = api.client.post(
        "/v1/products", json={"code": code, "name": "Pawn", "config": config}, headers=admin
    )
    assert r.status_code == 201
    terms = {
        "haircut": "0.30",
        "max_ltv": "0.60",
        "warning_ltv": "0.70",
        "margin_call_ltv": "0.80",
        "liquidation_ltv": "0.95",
        "margin_call_days": 5,
    }
    r = api.client.put(f"/v1/products/{code}/collateral-terms", json=terms, headers=admin)
    assert r.status_code == 200, r.text
    bad = terms | {"warning_ltv": "0.90"}  # above the margin call threshold
    r = api.client.put(f"/v1/products/{code}/collateral-terms", json=bad, headers=admin)
    assert (r.status_code, r.json()["field"]) == (422, "max_ltv")

    loan = {"product_code": code, "principal": "1100", "periods": 12, "start_date": "2025-01-15"}
    loan_id = api.client.post("/v1/loans", json=loan, headers={**admin, **_key()}).json()["id"]
    r = api.client.post(
        f"/v1/loans/{loan_id}/disbursements", json={}, headers={**admin, **_key()}
    )  # the product has collateral terms: no pay-out before the phone is pledged
    assert (r.status_code, r.json()["rule"]) == (409, "pledge-required")
    pledge = {
        "imei": _imei("86123456000001"),
        "model_key": "xiaomi-14",
        "storage_gb": 256,
        "condition": CONDITION,
        "custody_mode": "pawn",
        "location": "Store 3, Guangzhou",
    }
    r = api.client.post(f"/v1/loans/{loan_id}/pledges", json=pledge, headers=admin)
    assert r.status_code == 201, r.text
    p = r.json()
    # Grade: screen minor_wear -> excellent, battery 90 -> mint: excellent. Market: median of
    # 2400 2500 2600 = 2500.00 (fresh). Maturity 2026-01-15 is 365 days away; no Xiaomi
    # history to fit, so the Android flagship default: 32.1% lost in a year -> 0.679000.
    # forecast 2500 x 0.679 = 1697.50; lending 1697.50 x (1 - 0.30) = 1188.25;
    # LTV 1100 / 2500 = 0.4400.
    v = p["valuation"]
    assert (v["basis"], v["grade"], v["forecast_ratio"]) == ("market", "excellent", "0.679000")
    assert (v["current_value"], v["forecast_value"], v["lending_value"]) == (
        "2500.00",
        "1697.50",
        "1188.25",
    )
    assert (p["ltv"], p["ltv_status"], p["imei"]) == (
        "0.4400",
        "ok",
        "86123456*****" + pledge["imei"][-2:],
    )
    r = api.client.post(f"/v1/loans/{loan_id}/pledges", json=pledge, headers=admin)
    assert (r.status_code, r.json()["field"]) == (409, "imei")
    r = api.client.post(
        f"/v1/loans/{loan_id}/pledges", json=pledge | {"custody_mode": "safe"}, headers=admin
    )
    assert r.status_code == 422 and "custody_mode" in r.text
    r = api.client.post(f"/v1/loans/{loan_id}/pledges", json=pledge, headers=api.viewer)
    assert r.status_code == 403

    api.client.post(f"/v1/loans/{loan_id}/disbursements", json={}, headers={**admin, **_key()})
    # The price falls: on 2025-02-21 the window (01-22, 02-21] holds 1300 1350 1400 -> 1350.00.
    # LTV 1100 / 1350 = 0.814814 -> 0.8149: margin call (>= 0.80), due 5 days later.
    # Shortfall 1100 / 0.6 - 1350 = 483.333.. -> 483.34; cash to cure 1100 - 810 = 290.00.
    falls = "\n".join(
        f"xiaomi-14,256,excellent,{price},2025-02-20,shop-{n}"
        for n, price in enumerate(("1300", "1350", "1400"))
    )
    api.client.post(
        "/v1/price-quotes/imports",
        json={"data": QUOTES.splitlines()[0] + "\n" + falls},
        headers=admin,
    )
    api.set_today(2025, 2, 21)
    r = api.client.post("/v1/collateral/mark-to-market", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["marked"] >= 1
    p = api.client.get(f"/v1/pledges/{p['id']}", headers=api.viewer).json()
    assert (p["current_value"], p["ltv"], p["ltv_status"], p["shortfall"]) == (
        "1350.00",
        "0.8149",
        "margin_call",
        "483.34",
    )
    (call,) = p["margin_calls"]
    assert (call["due_on"], call["prepayment_to_cure"], call["status"]) == (
        "2025-02-26",
        "290.00",
        "open",
    )
    # The borrower prepays the 290.00: 91.67 settles installment 1 (1100 / 12, due 02-15),
    # 198.33 buys principal ahead; owed 1100 - 290 = 810.00; LTV 810 / 1350 = 0.6000: ok,
    # and the call is cured at once by the payment.
    r = api.client.post(
        f"/v1/loans/{loan_id}/prepayments", json={"amount": "290.00"}, headers={**admin, **_key()}
    )
    assert r.status_code == 201, r.text
    p = api.client.get(f"/v1/pledges/{p['id']}", headers=api.viewer).json()
    assert (p["outstanding"], p["ltv"], p["ltv_status"], p["shortfall"]) == (
        "810.00",
        "0.6000",
        "ok",
        "0.00",
    )
    assert p["margin_calls"][0]["status"] == "cured"
    events = api.client.get(f"/v1/pledges/{p['id']}/events", headers=api.viewer).json()
    assert [e["kind"] for e in events] == [
        "registered",
        "ltv_margin_call",
        "margin_call",
        "ltv_ok",
        "margin_call_cured",
    ]
    assert events[0]["actor"] == "test-admin"
    r = api.client.get("/v1/margin-calls?status=cured", headers=api.viewer)
    assert any(c["pledge_id"] == p["id"] for c in r.json())
