"""The CLI as scripts use it: real processes, JSON on stdout, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MOBILEND = [sys.executable, "-m", "mobilend.cli"]


def run(
    args: list[str], stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MOBILEND + args, input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


def test_quote_json_shape_and_figures() -> None:
    r = run(
        [
            "quote", "--principal", "5000", "--annual-rate", "12", "--periods", "18",
            "--frequency", "monthly", "--schedule", "annuity", "--start", "2022-11-01", "--json",
        ]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)
    assert set(q) >= {"installments", "total_interest", "total_payment", "apr"}
    assert set(q["installments"][0]) == {
        "number", "due_date", "principal", "interest", "fee", "total", "balance",
    }  # fmt: skip
    # 5000 * 0.01 / (1 - 1.01**-18) = 304.9099 -> 304.91; interest of month 1 = 50.00
    first = q["installments"][0]
    assert (first["total"], first["interest"], first["due_date"]) == (
        "304.91",
        "50.00",
        "2022-12-01",
    )
    assert q["installments"][-1]["balance"] == "0.00"
    assert len(q["installments"]) == 18
    assert set(q["apr"]) == {"irr_simple_pct", "irr_compound_pct"}


def test_quote_equal_principal_whole_units_and_holidays() -> None:
    # 等额本金 12000 over 12 months at 12%: principal 1000 each; interest 120, 110, ... 10.
    r = run(
        [
            "quote", "--principal", "12000", "--annual-rate", "12", "--periods", "12",
            "--schedule", "equal-principal", "--start", "2025-01-01", "--json",
        ]
    )  # fmt: skip
    q = json.loads(r.stdout)
    assert [i["interest"] for i in q["installments"][:3]] == ["120.00", "110.00", "100.00"]
    assert q["total_interest"] == "780.00"
    # Business-day rule "next" with China's calendar: 2025-10-01 (National Day) -> 2025-10-09.
    r = run(
        [
            "quote", "--principal", "1000", "--annual-rate", "12", "--periods", "1",
            "--start", "2025-09-01", "--business-day", "next", "--calendar", "CN", "--json",
        ]
    )  # fmt: skip
    assert json.loads(r.stdout)["installments"][0]["due_date"] == "2025-10-09"


def test_quote_bad_input_names_the_field() -> None:
    r = run(
        [
            "quote",
            "--principal",
            "abc",
            "--annual-rate",
            "12",
            "--periods",
            "3",
            "--start",
            "2025-01-01",
            "--json",
        ]
    )
    assert r.returncode == 2
    assert json.loads(r.stderr)["error"]["field"] == "principal"
    r = run(
        [
            "quote",
            "--principal",
            "100",
            "--annual-rate",
            "12",
            "--periods",
            "3",
            "--start",
            "2025-13-01",
            "--json",
        ]
    )
    assert r.returncode == 2
    assert json.loads(r.stderr)["error"]["field"] == "start"


def test_apr_from_stdin() -> None:
    # One year, one payment: 1000 -> 1100 is 10% by every method.
    flows = {
        "advances": [{"date": "2025-01-01", "amount": "1000"}],
        "payments": [{"date": "2026-01-01", "amount": "1100"}],
    }
    for method in ("irr", "regz", "eu"):
        r = run(["apr", "--json"], stdin=json.dumps({"method": method, **flows}))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"apr_pct": "10.0000"}, method
    r = run(["apr", "--json"], stdin=json.dumps({"method": "nope", **flows}))
    assert r.returncode == 2
    assert json.loads(r.stderr)["error"]["field"] == "method"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_db_upgrade_then_serve_with_bootstrap_token(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MOBILEND_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "MOBILEND_DATA_DIR": str(tmp_path / "var"),
    }
    assert run(["db", "upgrade"], env=env).returncode == 0
    port = _free_port()
    proc = subprocess.Popen(
        [*MOBILEND, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        token = (tmp_path / "var" / "admin-token").read_text().strip()
        r = httpx.get(
            f"http://127.0.0.1:{port}/v1/products", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.json() == []
        assert (
            httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "Mobilend"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.integration
def test_credentials_create_list_revoke(tmp_path: Path) -> None:
    env = {**os.environ, "MOBILEND_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    assert run(["db", "upgrade"], env=env).returncode == 0
    made = json.loads(
        run(["credentials", "create", "--name", "app", "--role", "viewer"], env=env).stdout
    )
    assert made["token"].startswith("mlk_") and made["role"] == "viewer"
    listed = json.loads(run(["credentials", "list"], env=env).stdout)
    assert listed == [{"id": made["id"], "name": "app", "role": "viewer", "revoked": False}]
    assert "token" not in listed[0]
    assert json.loads(run(["credentials", "revoke", "--id", str(made["id"])], env=env).stdout)[
        "revoked"
    ]
    bad = run(["credentials", "create", "--name", "x", "--role", "boss"], env=env)
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"]["field"] == "role"


@pytest.mark.integration
def test_model_init_reuses_the_trained_registry(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.unit.test_engine import shared_model_dir

    root = shared_model_dir(tmp_path_factory)  # trained once per run (or already there)
    env = {**os.environ, "MOBILEND_MODEL_DIR": str(root)}
    r = run(["model", "init"], env=env)
    assert r.returncode == 0, r.stderr
    state = json.loads(r.stdout)
    assert state["registry"] == str(root)
    assert state["champion"] and state["challenger"] and state["champion"] != state["challenger"]


@pytest.mark.integration
def test_model_monitor_flags_a_shifted_population(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from mobilend.decisioning.datasets import german_credit
    from mobilend.decisioning.registry import ModelRegistry
    from tests.unit.test_engine import shared_model_dir

    root = shared_model_dir(tmp_path_factory)
    champion = root / ModelRegistry(root).state["champion"]
    X, _ = german_credit()
    baseline = tmp_path / "baseline.csv"
    X.to_csv(baseline, index=False)
    # The same population: every bin holds the same share, so every PSI is exactly 0.
    same = json.loads(
        run(["model", "monitor", "--model", str(champion), "--baseline", str(baseline),
             "--recent", str(baseline), "--json"]).stdout
    )  # fmt: skip
    assert same["score"] == {"psi": 0.0, "status": "stable"}
    assert all(v["psi"] == 0.0 for v in same["features"].values())
    # Everyone 25 years older: all ages leave the baseline's lower bins, so AGE must be "act".
    shifted = X.copy()
    shifted["AGE"] = shifted["AGE"] + 25
    recent = tmp_path / "recent.csv"
    shifted.to_csv(recent, index=False)
    r = run(["model", "monitor", "--model", str(champion), "--baseline", str(baseline),
             "--recent", str(recent), "--json"])  # fmt: skip
    report = json.loads(r.stdout)
    assert report["features"]["AGE"]["status"] == "act"
    assert report["features"]["DURATION"]["psi"] == 0.0
    bad = run(["model", "monitor", "--model", str(champion), "--baseline", str(baseline),
               "--recent", str(tmp_path / "nope.csv")])  # fmt: skip
    assert bad.returncode == 2


def test_collateral_commands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MOBILEND_DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "MOBILEND_DATA_DIR": str(tmp_path / "data"),
    }
    assert run(["db", "upgrade"], env=env).returncode == 0
    r = run(["collateral", "catalog-import", "--seed"], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"created": 29, "updated": 0}
    again = json.loads(run(["collateral", "catalog-import", "--seed"], env=env).stdout)
    assert again == {"created": 0, "updated": 29}
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "model_key,storage_gb,grade,price,quoted_on,source\n"
        "xiaomi-14,256,good,1900,2026-11-20,a\n"
        "xiaomi-14,256,good,2000,2026-11-21,b\n"
        "xiaomi-14,256,good,9000,2026-11-22,c\n"  # an outlier, rejected by the MAD rule
    )
    r = run(["collateral", "quotes-import", str(feed)], env=env)
    assert json.loads(r.stdout) == {"received": 3, "added": 3, "skipped": 0}
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "model_key,storage_gb,grade,price,quoted_on,source\nxiaomi-14,256,good,-5,2026-11-20,a\n"
    )
    r = run(["collateral", "quotes-import", str(bad)], env=env)
    assert r.returncode == 2 and json.loads(r.stderr)["error"]["field"] == "row 2: price"
    r = run(["collateral", "quotes-simulate", "--model", "xiaomi-14", "--storage", "256",
             "--start", "2026-01-01", "--end", "2026-01-15"], env=env)  # fmt: skip
    lines = r.stdout.splitlines()
    assert lines[0] == "model_key,storage_gb,grade,price,quoted_on,source"
    assert len(lines) == 1 + 3 * 3 and all(",simulated-" in line for line in lines[1:])
    r = run(["collateral", "value", "--model", "nope", "--storage", "1", "--screen", "flawless",
             "--body", "flawless", "--battery", "100"], env=env)  # fmt: skip
    assert r.returncode == 2 and json.loads(r.stderr)["error"]["field"] == "model_key"
    r = run(["collateral", "mark", "--date", "2026-11-28"], env=env)
    assert json.loads(r.stdout)["marked"] == 0
    r = run(["devices", "policy-run", "--date", "2026-11-28"], env=env)
    assert json.loads(r.stdout)["devices"] == 0
