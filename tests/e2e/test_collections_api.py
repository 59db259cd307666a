"""Collections over HTTP: a case for an overdue loan, an agent, contacts, actions refused by
the conduct rules as problem+json naming the field and rule, a promise, legal referral refused
before the product's DPD, and a restructuring offer accepted with an Idempotency-Key.

The loan: 1200 at 12%, 3 monthly installments from 2025-01-15, #1 (408.03, due 02-15) unpaid;
on 2025-03-01 it is 14 days past due. The shared database holds other tests' loans, so only
this loan's delinquency is refreshed and its case is opened by POST (not by the daily step).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from httpx import Response

from mobilend.db.session import unit_of_work
from mobilend.loans import service as loans
from mobilend.servicing.status import refresh_delinquency
from tests.e2e.conftest import Api

SH = ZoneInfo("Asia/Shanghai")
PROBLEM = "application/problem+json"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _overdue_loan(api: Api) -> int:
    code = f"K{uuid.uuid4().hex[:8]}"
    policy = {"legal_after_dpd": 30, "max_contacts_per_day": 2}
    r = api.client.post(
        "/v1/products",
        json={"code": code, "name": "Phone loan", "config": {"servicing_policy": policy}},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    api.set_today(2025, 1, 15)
    loan = {"product_code": code, "principal": "1200", "periods": 3, "start_date": "2025-01-15"}
    loan_id: int = api.client.post("/v1/loans", json=loan, headers={**api.admin, **_key()}).json()[
        "id"
    ]
    r = api.client.post(
        f"/v1/loans/{loan_id}/disbursements", json={}, headers={**api.admin, **_key()}
    )
    assert r.status_code in (200, 201), r.text
    day = date(2025, 3, 1)
    with unit_of_work(api.client.app.state.sessions) as session:  # type: ignore[attr-defined]
        loans.accrue(session, loan_id=loan_id, through=day)
        refresh_delinquency(session, business_date=day, lo=loan_id, hi=loan_id + 1)
    api.clock.current = datetime(2025, 3, 1, 23, 0, tzinfo=SH)
    return loan_id


def test_collections_over_http(api: Api) -> None:
    admin, viewer, c = api.admin, api.viewer, api.client
    loan_id = _overdue_loan(api)

    r = c.post("/v1/collections/cases", json={"loan_id": loan_id}, headers=admin)
    assert r.status_code == 201, r.text
    case = r.json()
    assert (case["queue"], case["status"], case["dpd_at_open"]) == ("M1-low", "open", 14)
    assert case["delinquency"]["overdue"] == "408.03"
    r = c.post("/v1/collections/cases", json={"loan_id": loan_id}, headers=admin)
    assert (r.status_code, r.json()["rule"]) == (409, "open-case")
    cid = case["id"]

    # A viewer reads collections but works no case.
    assert c.get("/v1/collections/queues", headers=viewer).status_code == 200
    r = c.post(f"/v1/collections/cases/{cid}/assign", json={}, headers=viewer)
    assert r.status_code == 403

    name = f"agent-{uuid.uuid4().hex[:6]}"
    r = c.post(
        "/v1/collections/agents",
        json={"name": name, "queues": ["M1-low", "M1-high"], "capacity": 1000},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    agent = r.json()["id"]
    r = c.post(f"/v1/collections/cases/{cid}/assign", json={"agent_id": agent}, headers=admin)
    assert r.json()["agent_id"] == agent

    contact = {"relation": "borrower", "value": "13912345678", "timezone": "Asia/Shanghai"}
    r = c.post(f"/v1/collections/loans/{loan_id}/contacts", json=contact, headers=admin)
    assert r.status_code == 201, r.text
    phone = r.json()
    assert phone["masked"] == "139****5678" and "13912345678" not in r.text
    stranger = {**contact, "relation": "third_party", "value": "13700000000"}
    r = c.post(f"/v1/collections/loans/{loan_id}/contacts", json=stranger, headers=admin)
    assert (r.status_code, r.json()["rule"]) == (422, "no-third-party")

    def act(at: str, **to: object) -> Response:
        body = {"agent_id": agent, "channel": "call", "outcome": "no_answer", "at": at}
        return c.post(f"/v1/collections/cases/{cid}/actions", json=body | to, headers=admin)

    r = act("2025-03-01T22:30:00+08:00", contact_id=phone["id"])
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert (problem["field"], problem["rule"]) == ("at", "quiet-hours")
    assert problem["type"].endswith("conduct-violation")
    r = act("2025-03-01T07:59:00+08:00", contact_id=phone["id"])
    assert r.json()["rule"] == "quiet-hours"
    for at in ("2025-03-01T10:00:00+08:00", "2025-03-01T11:00:00+08:00"):
        assert act(at, contact_id=phone["id"]).status_code == 201
    r = act("2025-03-01T12:00:00+08:00", value="139-1234-5678")  # the same number, 3rd time
    assert (r.json()["field"], r.json()["rule"]) == ("contact_point", "daily-limit")
    r = act("2025-03-01T12:00:00+08:00", value="13700000000")  # none of the loan's contacts
    assert (r.json()["field"], r.json()["rule"]) == ("relation", "no-third-party")

    detail = c.get(f"/v1/collections/cases/{cid}", headers=viewer).json()
    assert [a["at"] for a in detail["actions"]] == [
        "2025-03-01T02:00:00+00:00",
        "2025-03-01T03:00:00+00:00",
    ]
    assert [x["rule"] for x in detail["refused_attempts"]] == [
        "quiet-hours",
        "quiet-hours",
        "daily-limit",
        "no-third-party",
    ]

    r = c.post(
        f"/v1/collections/cases/{cid}/promises",
        json={"amount": 408.03, "due_date": "2025-03-05"},
        headers=admin,
    )
    assert r.status_code == 422  # money is a decimal string
    r = c.post(
        f"/v1/collections/cases/{cid}/promises",
        json={"amount": "408.03", "due_date": "2025-03-05", "agent_id": agent},
        headers=admin,
    )
    assert (r.status_code, r.json()["status"]) == (201, "open")

    r = c.post(f"/v1/collections/cases/{cid}/escalate", json={"reason": "gone"}, headers=admin)
    assert (r.status_code, r.json()["rule"]) == (409, "legal-after-dpd")  # 14 < 30

    r = c.post(
        f"/v1/collections/cases/{cid}/restructure-offers",
        json={"extension_months": 3},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    offer = r.json()
    # 1200.00 over 6 months from 03-01 at 1%: 207.06 a month (test_collections works it out),
    # and the 16.02 of interest accrued through 03-01 stays due on the day.
    assert (offer["periods"], offer["arrears"]) == (6, "16.02")
    assert offer["schedule"][0]["total"] == "207.06"
    url = f"/v1/collections/restructure-offers/{offer['id']}/accept"
    assert c.post(url, headers=admin).status_code == 400  # no Idempotency-Key
    key = _key()
    r = c.post(url, headers={**admin, **key})
    assert (r.status_code, r.json()["status"]) == (200, "accepted"), r.text
    again = c.post(url, headers={**admin, **key})
    assert again.json() == r.json() and again.headers["Idempotent-Replayed"] == "true"
    r = c.post(url, headers={**admin, **_key()})
    assert (r.status_code, r.json()["rule"]) == (409, "offered")

    case = c.get(f"/v1/collections/cases/{cid}", headers=admin).json()
    assert case["delinquency"]["class_floor"] == "special_mention"
    queues = {q["queue"]: q for q in c.get("/v1/collections/queues", headers=admin).json()}
    assert queues["M1-low"]["cases"] >= 1
