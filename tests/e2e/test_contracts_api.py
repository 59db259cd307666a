"""E-contracts over HTTP and the CLI: draft, code by SMS (read from the outbox, as the SMS
gateway would), signature, documents, verification; the signed file checked by pyHanko and
by `mobilend contracts verify` / `verify-file`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.db.session import session_factory, unit_of_work
from mobilend.notify.models import OutboxMessage
from mobilend.settings import Settings
from mobilend.trust.contract_texts import CONSENT_VERSION
from tests.integration.test_borrowers import new_id_number, new_phone
from tests.unit.test_contract_pdf import cjk_font, pdf_text, pyhanko_status

MOBILEND = Path(sys.executable).parent / "mobilend"
SH = ZoneInfo("Asia/Shanghai")


@dataclass
class Env:
    client: TestClient
    clock: FixedClock
    data_dir: Path
    db_url: str
    admin: dict[str, str]
    officer: dict[str, str]
    viewer: dict[str, str]

    def advance(self, **delta: float) -> None:
        self.clock.current = self.clock.current + timedelta(**delta)

    def code_from_outbox(self, contract_id: int) -> str:
        """What the SMS gateway reads: the newest signing-code message of the contract."""
        app: Any = self.client.app
        with unit_of_work(app.state.sessions) as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.topic == "contract.signing_code")
                .order_by(OutboxMessage.id.desc())
            ).all()
        [row] = [r for r in rows if r.params["contract_no"] == f"MLC-{contract_id:08d}"][:1]
        return str(row.params["code"])


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    cjk_font()  # skips (locally) or fails (CI) without a Chinese font
    clock = FixedClock(datetime(2025, 1, 15, 12, tzinfo=SH))
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path), clock=clock)
    with unit_of_work(session_factory(app.state.engine)) as session:
        tokens = {r: create_credential(session, name=f"t-{r}", role=r)[1] for r in ROLES}
    with TestClient(app) as client:
        yield Env(
            client,
            clock,
            tmp_path,
            db_url,
            *({"Authorization": f"Bearer {tokens[r]}"} for r in ROLES),
        )
    app.state.engine.dispose()


ROLES = ("admin", "officer", "viewer")


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _problem(r: Any, status: int, field: str, rule: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["field"] == field and (rule is None or body["rule"] == rule), body
    return body


def _loan(env: Env) -> int:
    c = env.client
    borrower = _ok(
        c.post(
            "/v1/borrowers",
            json={"name": "王五", "id_number": new_id_number(), "phone": new_phone()},
            headers=env.admin,
        ),
        201,
    )
    code = f"E{uuid.uuid4().hex[:10]}"
    config = {"penalty_rate_pct": "18", "late_fee": "20", "late_fee_grace_days": 3}
    _ok(c.post("/v1/products", json={"code": code, "name": "x", "config": config},
               headers=env.admin), 201)  # fmt: skip
    body = {
        "product_code": code,
        "principal": "1200",
        "periods": 3,
        "start_date": "2025-01-15",
        "borrower_ref": f"borrower:{borrower['id']}",
    }
    headers = {**env.officer, "Idempotency-Key": uuid.uuid4().hex}
    return int(_ok(c.post("/v1/loans", json=body, headers=headers), 201)["id"])


def test_draft_sign_verify_over_http_and_cli(env: Env) -> None:
    c = env.client
    loan_id = _loan(env)
    path = f"/v1/loans/{loan_id}/contracts"
    assert c.post(path, json={"language": "en"}, headers=env.viewer).status_code == 403
    _problem(c.post(path, json={"language": "fr"}, headers=env.officer), 422, "language")
    draft = _ok(c.post(path, json={"language": "en"}, headers=env.officer), 201)
    cid = draft["id"]
    kf = draft["key_facts"]  # the hand-calculated loan of test_loan_lifecycle.py
    assert (kf["principal"], kf["total_interest"], kf["total_payment"]) == (
        "1200.00",
        "24.08",
        "1224.08",
    )
    assert kf["apr"] == {"irr_simple_pct": "12.0002", "irr_compound_pct": "12.6828"}
    assert draft["status"] == "draft" and draft["signed_sha256"] is None

    r = c.get(f"/v1/contracts/{cid}/document", params={"kind": "draft"}, headers=env.viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(r.content).hexdigest() == draft["draft_sha256"]
    assert "Total amount to repay" in pdf_text(r.content).replace("\n", " ")
    _problem(c.get(f"/v1/contracts/{cid}/document", params={"kind": "signed"},
                   headers=env.viewer), 409, "kind", "not-signed")  # fmt: skip

    sent = _ok(c.post(f"/v1/contracts/{cid}/signing-codes", headers=env.officer), 202)
    assert set(sent) == {"contract_id", "sent_to", "expires_at", "attempts_allowed"}
    code = env.code_from_outbox(cid)
    assert code not in json.dumps(sent)
    sig = f"/v1/contracts/{cid}/signature"
    body = {"code": f"{(int(code) + 1) % 10**6:06d}", "consent_version": CONSENT_VERSION}
    _problem(c.post(sig, json=body, headers=env.officer), 422, "code", "match")
    _problem(
        c.post(sig, json={**body, "code": code, "consent_version": "x"}, headers=env.officer),
        422,
        "consent_version",
    )
    body = {"code": code, "consent_version": CONSENT_VERSION, "device": "android-42"}
    headers = {**env.officer, "User-Agent": "MobilendApp/2.1 (Android 14)"}
    signed = _ok(c.post(sig, json=body, headers=headers))
    assert signed["status"] == "signed" and signed["consent_version"] == CONSENT_VERSION
    _problem(c.post(sig, json=body, headers=env.officer), 409, "contract_id", "contract-signed")

    r = c.get(f"/v1/contracts/{cid}/document", params={"kind": "signed"}, headers=env.viewer)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == signed["signed_sha256"]
    ca = env.data_dir / "contract-pki" / "ca-cert.pem"
    assert pyhanko_status(r.content, ca).bottom_line
    out = env.data_dir / "signed.pdf"
    out.write_bytes(r.content)

    found = _ok(c.get(f"/v1/contracts/{cid}/verification", headers=env.viewer))
    assert found["ok"] and found["intact"] and found["valid"] and found["trusted"]
    assert found["bottom_line"] and found["hash_matches"] and found["logged"]
    assert found["log"]["status"] == "pending"

    run_env = {
        **os.environ,
        "MOBILEND_DATABASE_URL": env.db_url,
        "MOBILEND_DATA_DIR": str(env.data_dir),
    }
    cli = [str(MOBILEND), "contracts"]
    done = _run([*cli, "verify", str(cid)], run_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hash_matches"] is True
    done = _run([*cli, "verify-file", str(out), "--trust-root", str(ca)], run_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bottom_line"] and report["sha256"] == signed["signed_sha256"]

    # Tamper with the stored file: the API and the CLI say so.
    stored = env.data_dir / "contracts" / f"{signed['signed_sha256']}.pdf"
    data = bytearray(stored.read_bytes())
    data[data.index(b"stream", len(data) // 4) + 40] ^= 0x01
    stored.write_bytes(bytes(data))
    found = _ok(c.get(f"/v1/contracts/{cid}/verification", headers=env.viewer))
    assert not found["ok"] and not found["hash_matches"] and not found["intact"]
    assert found["logged"]  # the log keeps the original hash
    _problem(c.get(f"/v1/contracts/{cid}/document", params={"kind": "signed"},
                   headers=env.viewer), 409, "document", "hash-mismatch")  # fmt: skip
    done = _run([*cli, "verify", str(cid)], run_env)
    assert done.returncode == 1 and json.loads(done.stdout)["hash_matches"] is False
    done = _run([*cli, "verify-file", str(stored), "--trust-root", str(ca)], run_env)
    assert done.returncode == 1 and json.loads(done.stdout)["intact"] is False


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_attempts_and_expiry_over_http(env: Env) -> None:
    c = env.client
    cid = _ok(c.post(f"/v1/loans/{_loan(env)}/contracts", json={}, headers=env.admin), 201)["id"]
    sig = f"/v1/contracts/{cid}/signature"
    _problem(c.post(sig, json={"code": "123456", "consent_version": CONSENT_VERSION},
                    headers=env.admin), 409, "code", "no-pending-code")  # fmt: skip
    _ok(c.post(f"/v1/contracts/{cid}/signing-codes", headers=env.admin), 202)
    _problem(c.post(f"/v1/contracts/{cid}/signing-codes", headers=env.admin), 409, "contract_id",
             "code-recently-sent")  # fmt: skip
    code = env.code_from_outbox(cid)
    bad = {"code": f"{(int(code) + 1) % 10**6:06d}", "consent_version": CONSENT_VERSION}
    for _ in range(5):
        _problem(c.post(sig, json=bad, headers=env.admin), 422, "code", "match")
    good = {**bad, "code": code}
    _problem(c.post(sig, json=good, headers=env.admin), 409, "code", "too-many-attempts")

    env.advance(minutes=1)
    _ok(c.post(f"/v1/contracts/{cid}/signing-codes", headers=env.admin), 202)
    code = env.code_from_outbox(cid)
    env.advance(minutes=10)  # the code lives 10 minutes
    _problem(c.post(sig, json={**good, "code": code}, headers=env.admin), 409, "code",
             "code-expired")  # fmt: skip
    _ok(c.post(f"/v1/contracts/{cid}/signing-codes", headers=env.admin), 202)
    code = env.code_from_outbox(cid)
    env.advance(minutes=9)
    assert _ok(c.post(sig, json={**good, "code": code}, headers=env.admin))["status"] == "signed"
    found = _ok(c.get(f"/v1/contracts/{cid}/verification", headers=env.viewer))
    assert found["ok"], found
    assert c.get(f"/v1/contracts/{cid}", headers=env.viewer).json()["status"] == "signed"
    assert c.get("/v1/contracts/999999999", headers=env.viewer).status_code == 404
