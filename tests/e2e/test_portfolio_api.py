"""Portfolio figures over HTTP and from the CLI, with figures worked out by hand below.

Two loans of 1,200 at 12% over 3 months from 2025-01-15 (installment 1: 408.03, see
test_loan_lifecycle). A pays installment 1 on its due date, B pays nothing. The close's rows
(loan_delinquency, month-end snapshots) are inserted as input data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from decimal import Decimal

import pytest

from mobilend.db.session import unit_of_work
from mobilend.servicing.models import DelinquencySnapshot, LoanDelinquency
from tests.e2e.conftest import Api

pytestmark = pytest.mark.integration
D = Decimal
JAN, FEB = date(2025, 1, 31), date(2025, 2, 28)


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _book(api: Api) -> tuple[str, int, int]:
    code = f"PA{uuid.uuid4().hex[:8]}"
    r = api.client.post("/v1/products", json={"code": code, "name": "x"}, headers=api.admin)
    assert r.status_code == 201, r.text
    api.set_today(2025, 1, 15)
    body = {"product_code": code, "principal": "1200", "periods": 3, "start_date": "2025-01-15"}
    ids = []
    for _ in range(2):
        loan = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()}).json()
        r = api.client.post(
            f"/v1/loans/{loan['id']}/disbursements", json={}, headers={**api.admin, **_key()}
        )
        assert r.status_code == 201, r.text
        ids.append(loan["id"])
    a, b = ids
    api.set_today(2025, 2, 15)
    r = api.client.post(
        f"/v1/loans/{a}/repayments", json={"amount": "408.03"}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 201, r.text
    _close_rows(api, a, b)
    api.set_today(2025, 3, 1)
    return code, a, b


def _close_rows(api: Api, a: int, b: int) -> None:
    """The close of 2025-02-28: A current, 803.97 left (1,200 - 396.03); B 13 DPD (due 02-15)."""

    def row(loan_id: int, dpd: int, bucket: str, tier: str, owed: str) -> LoanDelinquency:
        zero = D("0")
        return LoanDelinquency(
            loan_id=loan_id, business_date=FEB, dpd=dpd, bucket=bucket, loan_class=tier,
            npl=False, overdue_principal=zero, overdue_interest=zero, overdue_fee=zero,
            overdue_penalty=zero, outstanding_principal=D(owed), exposure=D(owed),
            provision=D("10.00"),
        )  # fmt: skip

    def snap(loan_id: int, day: date, dpd: int, bucket: str, owed: str) -> DelinquencySnapshot:
        return DelinquencySnapshot(
            business_date=day, loan_id=loan_id, disbursed_on=date(2025, 1, 15), dpd=dpd,
            bucket=bucket, loan_class="normal" if dpd == 0 else "special_mention",
            outstanding_principal=D(owed),
        )  # fmt: skip

    with unit_of_work(api.client.app.state.sessions) as session:  # type: ignore[attr-defined]
        session.add_all(
            [
                row(a, 0, "M0", "normal", "803.97"),
                row(b, 13, "M1", "special_mention", "1200.00"),
                snap(a, JAN, 0, "M0", "1200.00"),
                snap(b, JAN, 0, "M0", "1200.00"),
                snap(a, FEB, 0, "M0", "803.97"),
                snap(b, FEB, 13, "M1", "1200.00"),
            ]
        )


def test_portfolio_routes_give_hand_figures(api: Api) -> None:
    code, _, _ = _book(api)
    scope = {"product_code": code}
    r = api.client.get("/v1/portfolio/summary", params=scope, headers=api.viewer)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["as_of"], s["close_date"], s["source"]) == (
        "2025-03-01",
        "2025-02-28",
        "loan_delinquency",
    )
    # PAR1 = 1,200.00 / 2,003.97 = 0.598811.. -> 0.5988; nothing is 30+ past due.
    assert s["par"] == {"1": "0.5988", "30": "0.0000", "60": "0.0000", "90": "0.0000"}
    assert (s["loans"], s["outstanding_principal"], s["provision"]) == (2, "2003.97", "20.00")
    assert [row["bucket"] for row in s["by_bucket"]] == ["M0", "M1"]
    assert s["npl_ratio"] == "0.0000"
    r = api.client.get(
        "/v1/portfolio/summary", params={**scope, "par_days": [10, 14]}, headers=api.viewer
    )
    assert r.json()["par"] == {"10": "0.5988", "14": "0.0000"}  # B is 13 days past due

    # January -> February: of M0's 2 loans (2,400.00), A stays (0.5) and B rolls to M1 (0.5).
    r = api.client.get("/v1/portfolio/roll-rates", params=scope, headers=api.viewer)
    assert r.status_code == 200, r.text
    roll = r.json()
    assert (roll["previous"], roll["current"]) == ("2025-01-31", "2025-02-28")
    assert roll["rows"][0]["rates"] == {"M0": "0.5000", "M1": "0.5000", "closed": "0.0000"}
    assert roll["rows"][0]["balance"] == "2400.00"

    # Cohort 2025-01: 2 loans, 2,400.00. 10+ DPD at MOB 1 (Feb 28): B -> 1,200 / 2,400 = 0.5.
    r = api.client.get(
        "/v1/portfolio/vintages", params={**scope, "threshold_days": 10}, headers=api.viewer
    )
    cohort = r.json()["cohorts"][0]
    assert (cohort["cohort"], cohort["loans"], cohort["principal"]) == ("2025-01", 2, "2400.00")
    assert [m["amount_share"] for m in cohort["months_on_book"]] == ["0.0000", "0.5000"]

    # February: 408.03 due from each loan; A's collected: 408.03 / 816.06 = 0.5.
    r = api.client.get(
        "/v1/portfolio/collection-rate",
        params={**scope, "start": "2025-02-01", "end": "2025-02-28"},
        headers=api.viewer,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "start": "2025-02-01",
        "end": "2025-02-28",
        "as_of": "2025-03-01",
        "currency": "CNY",
        "installments": 2,
        "amount_due": "816.06",
        "collected": "408.03",
        "uncollected": "408.03",
        "collection_rate": "0.5000",
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "field", "rule"),
    [
        ("summary", {"as_of": "2025-02-30"}, 422, "as_of", None),
        ("summary", {"par_days": "-5"}, 422, "par_days", "non-negative"),
        ("summary", {"currency": "cny"}, 422, "currency", "iso-4217"),
        ("summary", {"product_code": "NO-SUCH"}, 404, "product_code", None),
        ("vintages", {"threshold_days": "-1"}, 422, "threshold_days", None),
        ("roll-rates", {"previous": "2999-01-31"}, 404, "as_of", None),
        ("collection-rate", {"end": "2025-02-28"}, 422, "start", "missing"),
        (
            "collection-rate",
            {"start": "2025-03-01", "end": "2025-02-01"},
            422,
            "end",
            "not-before-start",
        ),
    ],
)
def test_invalid_parameters_are_problems(
    api: Api, path: str, params: dict[str, str], status: int, field: str, rule: str | None
) -> None:
    api.set_today(2000, 1, 1)  # nothing of other tests' closes is on or before this date
    r = api.client.get(f"/v1/portfolio/{path}", params=params, headers=api.viewer)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["field"] == field
    if rule is not None:
        assert problem["rule"] == rule


def test_portfolio_needs_a_credential(api: Api) -> None:
    r = api.client.get("/v1/portfolio/summary")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOBILEND_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "mobilend.cli", "portfolio", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_prints_the_api_figures(api: Api, db_url: str) -> None:
    code, _, _ = _book(api)
    common = ["--product", code, "--as-of", "2025-03-01"]
    r = _cli(["summary", *common, "--json"], db_url)
    assert r.returncode == 0, r.stderr
    via_http = api.client.get(
        "/v1/portfolio/summary", params={"product_code": code}, headers=api.viewer
    )
    assert json.loads(r.stdout) == via_http.json()
    r = _cli(["collection-rate", *common, "--start", "2025-02-01", "--end", "2025-02-28"], db_url)
    assert r.returncode == 0, r.stderr
    assert "816.06" in r.stdout and "0.5000" in r.stdout  # the Rich table
    r = _cli(["roll-rates", *common], db_url)
    assert r.returncode == 0 and "2025-01-31 -> 2025-02-28" in r.stdout
    r = _cli(["vintages", *common, "--threshold", "10", "--json"], db_url)
    assert json.loads(r.stdout)["cohorts"][0]["months_on_book"][1]["count_share"] == "0.5000"
    bad = _cli(["summary", "--as-of", "2025-02-30"], db_url)
    assert bad.returncode == 2
    assert json.loads(bad.stderr)["error"]["field"] == "as_of"
