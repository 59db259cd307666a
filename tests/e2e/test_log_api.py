"""The transparency log over HTTP, checked by the offline verifier (`mobilend log verify`).

Each test has a database of its own (the log is one global tree) and a data_dir of its own
(the signing key). Files are written exactly as the API serves them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mobilend.db.session import unit_of_work
from mobilend.trust import log, merkle
from tests.e2e.conftest import Api

MOBILEND = Path(sys.executable).parent / "mobilend"
T0 = datetime(2025, 1, 15, 4, tzinfo=UTC)


@pytest.fixture
def db_url(isolated_db_url: str) -> str:  # overrides the shared database of tests/conftest.py
    return isolated_db_url


@pytest.fixture
def logged(api: Api, tmp_path: Path) -> Api:
    app: Any = api.client.app
    app.state.settings = app.state.settings.model_copy(update={"data_dir": tmp_path / "data"})
    return api


def record(api: Api, first: int, count: int) -> None:
    app: Any = api.client.app
    with unit_of_work(app.state.sessions) as session:
        for n in range(first, first + count):
            log.record(
                session,
                kind="repayment",
                refs={"loan_id": n, "repayment_id": n * 10},
                digest=merkle.leaf_hash(f"repayment {n}".encode()),
                at=T0 + timedelta(minutes=n),
            )


def get(api: Api, path: str, **params: Any) -> Any:
    r = api.client.get(path, params=params, headers=api.viewer)
    assert r.status_code == 200, r.text
    return r.json()


def verify(tmp_path: Path, **files: Any) -> tuple[int, dict[str, Any]]:
    args = [str(MOBILEND), "log", "verify"]
    for name, body in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        args += [f"--{name.replace('_', '-')}", str(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout)


def test_download_and_verify_offline(logged: Api, tmp_path: Path) -> None:
    api = logged
    r = api.client.get("/v1/log/sth", headers=api.viewer)
    assert r.status_code == 404 and r.json()["field"] == "sth"
    record(api, 0, 10)
    assert api.client.post("/v1/log/sth", headers=api.viewer).status_code == 403
    r = api.client.post("/v1/log/sth", headers=api.admin)
    assert r.status_code == 201, r.text
    sth = r.json()
    assert sth["tree_size"] == 10 and sth == get(api, "/v1/log/sth")
    # 2025-01-15T12:00+08:00 (the FixedClock) is 1736913600 s after the epoch.
    assert sth["timestamp"] == 1_736_913_600_000

    entry = get(api, "/v1/log/entries", start=3, end=3)["entries"][0]
    assert entry["leaf_index"] == 3 and entry["kind"] == "repayment"
    proof = get(api, "/v1/log/proof-by-hash", hash=entry["leaf_hash"], tree_size=10)
    assert proof["leaf_index"] == 3 and len(proof["audit_path"]) == 4  # ceil(log2(10))
    key = get(api, "/v1/log/public-key")
    assert key["algorithm"] == "Ed25519" and key["key_id"] == sth["key_id"]
    assert (tmp_path / "data" / "log-signing-key.pem").exists()

    code, verdict = verify(
        tmp_path, entry=entry, proof=proof, sth=sth, public_key=key["public_key"]
    )
    assert code == 0, verdict
    assert verdict["leaf"]["refs"] == {"loan_id": 3, "repayment_id": 30}
    # The PEM, or the whole public-key answer, does as well as the raw base64 key.
    code, _ = verify(tmp_path, entry=entry, proof=proof, sth=sth, public_key=key["pem"])
    assert code == 0
    code, _ = verify(tmp_path, entry=entry, proof=proof, sth=sth, public_key=json.dumps(key))
    assert code == 0

    # A later tree head, and the proof that the first is a prefix of it.
    record(api, 10, 5)
    api.set_today(2025, 1, 16)
    new = api.client.post("/v1/log/sth", headers=api.admin).json()
    assert new["tree_size"] == 15
    consistency = get(api, "/v1/log/consistency", first=10, second=15)
    new_proof = get(api, "/v1/log/proof-by-hash", hash=entry["leaf_hash"], tree_size=15)
    code, verdict = verify(
        tmp_path,
        entry=entry,
        proof=new_proof,
        sth=new,
        public_key=key["public_key"],
        old_sth=sth,
        consistency=consistency,
    )
    assert code == 0, verdict
    assert (verdict["old_tree_size"], verdict["tree_size"]) == (10, 15)
    assert "consistency-proof" in verdict["passed"]

    # The old proof does not fit the new head; a consistency proof between other sizes fails.
    code, verdict = verify(
        tmp_path, entry=entry, proof=proof, sth=new, public_key=key["public_key"]
    )
    assert (code, verdict["failed"]) == (1, "proof-tree-size")
    wrong = get(api, "/v1/log/consistency", first=9, second=15)
    code, verdict = verify(
        tmp_path,
        entry=entry,
        proof=new_proof,
        sth=new,
        public_key=key["public_key"],
        old_sth=sth,
        consistency={**wrong, "first": 10},
    )
    assert (code, verdict["failed"]) == (1, "consistency-proof")


def test_hashes_travel_as_base64_or_hex(logged: Api) -> None:
    api = logged
    record(api, 0, 3)
    api.client.post("/v1/log/sth", headers=api.admin)
    entry = get(api, "/v1/log/entries", start=0, end=99)["entries"][2]
    by_b64 = get(api, "/v1/log/proof-by-hash", hash=entry["leaf_hash"], tree_size=3)
    raw = base64.b64decode(entry["leaf_hash"])
    assert get(api, "/v1/log/proof-by-hash", hash=raw.hex(), tree_size=3) == by_b64
    unescaped = entry["leaf_hash"].replace("+", " ")  # a '+' sent without URL-encoding
    r = api.client.get(f"/v1/log/proof-by-hash?hash={unescaped}&tree_size=3", headers=api.viewer)
    assert r.json() == by_b64


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/log/proof-by-hash", {"hash": "not a hash!", "tree_size": 3}, 422, "hash"),
        ("/v1/log/proof-by-hash", {"hash": "00" * 32, "tree_size": 3}, 404, "hash"),
        ("/v1/log/proof-by-hash", {"hash": "00" * 32, "tree_size": 0}, 422, "tree_size"),
        ("/v1/log/proof-by-hash", {"hash": "00" * 32, "tree_size": 4}, 422, "tree_size"),
        ("/v1/log/proof-by-hash", {"hash": "00" * 32}, 422, "tree_size"),
        ("/v1/log/consistency", {"first": 2, "second": 1}, 422, "first"),
        ("/v1/log/consistency", {"first": 1, "second": 4}, 422, "second"),
        ("/v1/log/entries", {"start": 3, "end": 5}, 422, "start"),
        ("/v1/log/entries", {"start": 2, "end": 1}, 422, "end"),
        ("/v1/log/entries", {"start": "x", "end": 1}, 422, "start"),
    ],
)
def test_errors_are_problems_naming_the_field(
    logged: Api, path: str, params: dict[str, Any], status: int, field: str
) -> None:
    record(logged, 0, 3)
    logged.client.post("/v1/log/sth", headers=logged.admin)
    r = logged.client.get(path, params=params, headers=logged.viewer)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


def test_audits_need_log_write_and_report(logged: Api) -> None:
    api = logged
    record(api, 0, 6)
    api.client.post("/v1/log/sth", headers=api.admin)
    assert api.client.post("/v1/log/audits", headers=api.viewer).status_code == 403
    assert api.client.get("/v1/log/sth").status_code == 401
    r = api.client.post("/v1/log/audits", headers=api.admin)
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] and report["problems"] == []
    assert (report["tree_size"], report["entries_checked"], report["tree_heads_checked"]) == (
        6,
        6,
        1,
    )
    assert report["nodes_checked"] == 2 * 6 - 2  # 6 = 0b110
