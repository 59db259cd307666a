"""Device lock over HTTP: the reference agent talks to the real app through the TestClient.

A 1000.00 loan at 12% a year in 3 monthly installments from 2025-01-15 (no penalty, no late
fee) is secured by an iPhone 13 kept by the borrower under device lock. By hand:
  installment 1, due 2025-02-15: 1000 * 0.01 / (1 - 1.01**-3) = 340.0221 -> 340.02
  (interest 1000 * 1% = 10.00, principal 330.02, balance 669.98).
The clock reads 12:00 in Shanghai (04:00 UTC) on each business date.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.collateral import catalog, commands
from mobilend.collateral import service as collateral
from mobilend.collateral.agent import (
    LOCKED_ALLOWLIST,
    OFFLINE_LOCK_MESSAGE,
    AgentError,
    DeviceAgent,
    Rejection,
    Transport,
    check_in_path,
)
from mobilend.collateral.models import CollateralEvent
from mobilend.core.clock import FixedClock
from mobilend.db.session import unit_of_work
from mobilend.settings import Settings, get_settings
from tests.e2e.conftest import Api

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
IPHONE_13_TAC = "35104463"  # in src/mobilend/collateral/data/catalog.csv


def with_check_digit(first14: str) -> str:
    """Luhn: double every second digit from the right of the 14, sum the digits, round up.

    By hand for 35104463000001: doubled 5->1, 0, 4->8, 3->6, 0, 0, 1->2 = 17; kept
    3+1+4+6+0+0+0 = 14; 31 needs 9 to reach 40, so the IMEI is 351044630000019.
    """
    total = 0
    for n, char in enumerate(reversed(first14)):
        digit = int(char) * (2 if n % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return first14 + str((10 - total % 10) % 10)


def test_the_luhn_helper() -> None:
    assert with_check_digit("35104463000001") == "351044630000019"


@pytest.fixture
def api(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The app with its data_dir (server signing key) in a temporary directory.

    Set through the environment so that get_settings() (used by the pledge lifecycle when it
    queues device commands) and the app's settings name the same key file.
    """
    monkeypatch.setenv("MOBILEND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    clock = FixedClock(datetime(2025, 1, 15, 12, tzinfo=SHANGHAI))
    app = create_app(Settings(database_url=db_url), clock=clock)
    assert app.state.settings.data_dir == get_settings().data_dir == tmp_path
    with unit_of_work(app.state.sessions) as session:
        _, admin = create_credential(session, name="test-admin", role="admin")
        _, viewer = create_credential(session, name="test-viewer", role="viewer")
    with TestClient(app) as client:
        yield Api(
            client,
            clock,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {viewer}"},
        )
    app.state.engine.dispose()
    get_settings.cache_clear()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def http(client: TestClient) -> Transport:
    """The agent's transport: a JSON POST through the app, raising on an HTTP error."""

    def send(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    return send


class Booked:
    """A secured product (lock policy spelled out: the defaults), a loan booked over HTTP on
    2025-01-15 and its phone pledged in device-lock mode over HTTP; not yet disbursed."""

    def __init__(self, api: Api) -> None:
        self.api = api
        code = f"L{uuid.uuid4().hex[:8]}"
        r = api.client.post(
            "/v1/products", json={"code": code, "name": "手机锁贷", "config": {}}, headers=api.admin
        )
        assert r.status_code == 201, r.text
        policy = {
            "reminder_days_before": [3, 1],
            "remind_on_due": True,
            "lock_after_grace_days": 4,
            "offline_lock_days": 7,
            "command_ttl_hours": 72,
        }
        r = api.client.put(
            f"/v1/products/{code}/collateral-terms",
            json={"required": True, "lock_policy": policy},
            headers=api.admin,
        )
        assert r.status_code == 200, r.text
        body = {"product_code": code, "principal": "1000", "periods": 3, "start_date": "2025-01-15"}
        r = api.client.post("/v1/loans", json=body, headers={**api.admin, **_key()})
        assert r.status_code == 201, r.text
        self.loan_id: int = r.json()["id"]
        first = r.json()["statement"]["installments"][0]
        assert (first["due_date"], first["principal"], first["interest"]) == (
            "2025-02-15",
            "330.02",
            "10.00",
        )
        app = api.client.app
        with unit_of_work(app.state.sessions) as session:  # type: ignore[attr-defined]
            collateral.import_catalog(session, catalog.seed_catalog())
        self.imei = with_check_digit(IPHONE_13_TAC + f"{secrets.randbelow(10**6):06d}")
        pledge = {
            "imei": self.imei,
            "storage_gb": 128,
            "custody_mode": "device_lock",
            "condition": {"screen": "flawless", "body": "flawless", "battery_health_pct": 92},
        }
        r = api.client.post(f"/v1/loans/{self.loan_id}/pledges", json=pledge, headers=api.admin)
        assert r.status_code == 201, r.text
        self.pledge_id: int = r.json()["id"]
        self.token: str = r.json()["provisioning_token"]

    def disburse(self) -> Any:
        return self.api.client.post(
            f"/v1/loans/{self.loan_id}/disbursements",
            json={},
            headers={**self.api.admin, **_key()},
        )

    def events(self, *kinds: str) -> list[CollateralEvent]:
        app = self.api.client.app
        with unit_of_work(app.state.sessions) as session:  # type: ignore[attr-defined]
            return list(
                session.scalars(
                    select(CollateralEvent)
                    .where(
                        CollateralEvent.pledge_id == self.pledge_id,
                        CollateralEvent.kind.in_(kinds),
                    )
                    .order_by(CollateralEvent.id)
                )
            )


def _actions(obeyed: list[commands.Command]) -> list[str]:
    return sorted(c.action for c in obeyed)


def _utc(text: str) -> datetime:
    return commands.parse_utc(text, field="t")


def test_a_device_lock_loan_from_enrollment_to_release(api: Api) -> None:
    loan = Booked(api)
    agent = DeviceAgent(http(api.client))

    # The enrollment: a wrong IMEI is refused; the token then works once.
    r = api.client.post(
        "/v1/devices/enroll",
        json={
            "provisioning_token": loan.token,
            "public_key": commands.generate_keypair()[1],
            "imeis": ["351044630000019"],
            "sim_mcc_mnc": "46000",
        },
    )
    if loan.imei != "351044630000019":
        assert r.status_code == 422 and r.json()["field"] == "imeis", r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    early = loan.disburse()  # a device-lock loan pays out only once the agent has enrolled
    assert early.status_code == 409 and early.json()["rule"] == "device-not-enrolled", early.text
    agent.enroll(loan.token, [loan.imei], "46000", now=api.clock.now())
    assert loan.disburse().status_code == 201
    again = api.client.post(
        "/v1/devices/enroll",
        json={
            "provisioning_token": loan.token,
            "public_key": commands.generate_keypair()[1],
            "imeis": [loan.imei],
            "sim_mcc_mnc": "46000",
        },
    )
    assert again.status_code == 409 and again.json()["field"] == "provisioning_token"
    assert agent.offline_lock_at == _utc("2025-01-22T04:00:00Z")  # 04:00 UTC + 7 days
    assert agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000") == []
    device_id = agent.device_id
    assert device_id is not None

    # Check in every 5 days (inside the 7-day offline window): each brings a signed extension
    # and no reminder (2025-02-15 is 26, 21, 16, 11, 6 days away; reminders are 3 and 1 day).
    for day in (20, 25, 30):
        api.set_today(2025, 1, day)
        assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
            "set_offline_deadline"
        ]
    for day in (4, 9):
        api.set_today(2025, 2, day)
        assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
            "set_offline_deadline"
        ]
    assert agent.offline_lock_at == _utc("2025-02-16T04:00:00Z")  # 2025-02-09 + 7 days

    # 2025-02-12, 3 days before the due date: the reminder arrives and is shown.
    api.set_today(2025, 2, 12)
    assert not agent.tick(now=api.clock.now())
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
        "reminder",
        "set_offline_deadline",
    ]
    assert agent.message == "Mobilend：您的还款将于 2025-02-15 到期，请在 App 内按时还款。"
    assert (
        agent.check_in(now=api.clock.now() + timedelta(minutes=1), sim_mcc_mnc="46000") == []
    )  # once a day

    # 2025-02-19 is 4 days past due: within the grace, no lock.
    api.set_today(2025, 2, 19)
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
        "set_offline_deadline"
    ]
    assert agent.state == "unlocked"

    # 2025-02-20 is 5 days past due (> 4): the policy run queues a lock, the check-in brings it.
    api.set_today(2025, 2, 20)
    r = api.client.post("/v1/devices/policy-runs", headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["business_date"] == "2025-02-20" and r.json()["lock"] >= 1
    status = api.client.get(f"/v1/devices/{device_id}", headers=api.viewer).json()
    assert [c["action"] for c in status["pending_commands"]] == ["lock"]
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
        "lock"
    ]  # no extension
    assert agent.state == "locked" and agent.allowed_apps() == LOCKED_ALLOWLIST
    assert agent.message is not None and "2025-02-15" in agent.message and "5 天" in agent.message
    agent.check_in(
        now=api.clock.now() + timedelta(minutes=1), sim_mcc_mnc="46000"
    )  # reports locked, acks the lock
    status = api.client.get(f"/v1/devices/{device_id}", headers=api.viewer).json()
    assert (status["state"], status["pending_commands"]) == ("locked", [])

    # 2025-02-21: installment 1 paid in full (340.02) -> current -> unlocked at the next check-in.
    api.set_today(2025, 2, 21)
    r = api.client.post(
        f"/v1/loans/{loan.loan_id}/repayments",
        json={"amount": "340.02"},
        headers={**api.admin, **_key()},
    )
    assert r.status_code == 201, r.text
    r = api.client.post("/v1/devices/policy-runs", headers=api.admin)  # a no-op if the
    assert r.status_code == 200, r.text  # repayment hook already queued the unlock
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == [
        "set_offline_deadline",
        "unlock",
    ]
    assert agent.state == "unlocked" and agent.allowed_apps() is None
    assert agent.message == "谢谢！您在Mobilend的借款已无逾期，此手机已解锁。"

    # 2025-03-01: paid off -> released; the agent says goodbye and is gone.
    api.set_today(2025, 3, 1)
    r = api.client.post(
        f"/v1/loans/{loan.loan_id}/prepayments", json={}, headers={**api.admin, **_key()}
    )
    assert r.status_code == 201 and r.json()["loan"]["status"] == "closed", r.text
    api.client.post("/v1/devices/policy-runs", headers=api.admin)
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")) == ["release"]
    assert agent.state == "released" and agent.final_ack_sent is True
    assert agent.message == "您在Mobilend的借款已结清，此手机已解除锁定管理。谢谢！"
    status = api.client.get(f"/v1/devices/{device_id}", headers=api.viewer).json()
    assert (status["status"], status["state"], status["pending_commands"]) == (
        "released",
        "released",
        [],
    )
    history = api.client.get(f"/v1/devices/{device_id}/commands", headers=api.viewer).json()
    assert {c["status"] for c in history if c["action"] == "release"} == {"done"}
    with pytest.raises(AgentError):
        agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")
    api.set_today(2025, 3, 2)
    api.client.post("/v1/devices/policy-runs", headers=api.admin)
    after = api.client.get(f"/v1/devices/{device_id}/commands", headers=api.viewer).json()
    assert len(after) == len(history)  # no more commands for a released phone
    r = api.client.post(
        f"/v1/devices/{device_id}/commands",
        json={"action": "lock", "reason": "too late"},
        headers=api.admin,
    )
    assert r.status_code == 409 and r.json()["field"] == "device_id"

    # Every lock, unlock and release is on the pledge's audit trail with who and why. The
    # release comes from the repayment hook ("loan repaid") or, without it, the policy.
    trail = [
        (e.kind, e.actor, e.detail["reason"])
        for e in loan.events("device_lock", "device_unlock", "device_release")
    ]
    assert trail[:2] == [
        ("device_lock", "system", "overdue-past-grace"),
        ("device_unlock", "system", "loan-current"),
    ]
    assert len(trail) == 3 and trail[2][:2] == ("device_release", "system")
    assert trail[2][2] in ("loan repaid", "loan-closed")
    assert loan.events("device_sim_changed", "device_rooted", "device_tampered") == []


def test_forgery_replay_signals_offline_lock_and_operators(api: Api) -> None:
    loan = Booked(api)
    forged_id = str(uuid.uuid4())
    inject = {"on": False}
    send = http(api.client)

    def network(path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Delivers everything; once asked, also slips in a command signed by another key."""
        answer = send(path, body)
        if inject["on"] and path.endswith("/check-in"):
            inject["on"] = False
            forged = commands.new_command(
                device_id=path.split("/")[3],
                action="release",
                now=api.clock.now(),
                ttl=timedelta(hours=1),
                command_id=forged_id,
            )
            other_key, _ = commands.generate_keypair()
            answer["commands"].append(commands.sign_command(other_key, forged, key_id="evil"))
        return answer

    agent = DeviceAgent(network)
    agent.enroll(loan.token, [loan.imei], "46000", now=api.clock.now())
    assert loan.disburse().status_code == 201
    device_id = agent.device_id
    assert device_id is not None and agent.private_key is not None
    path = check_in_path(device_id)

    # Device routes take no bearer credential; a replayed check-in is refused.
    payload = commands.new_check_in(
        device_id=device_id,
        now=api.clock.now(),
        state="unlocked",
        imeis=[loan.imei],
        sim_mcc_mnc="46000",
    )
    envelope = commands.sign_check_in(agent.private_key, payload)
    assert api.client.post(path, json=envelope).status_code == 200
    replay = api.client.post(path, json=envelope)
    assert replay.status_code == 400, replay.text
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert (replay.json()["field"], replay.json()["rule"]) == ("envelope", "replayed")

    # A forged release is refused by the agent, acked as rejected, and recorded by the server.
    inject["on"] = True
    assert agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000") == []
    assert agent.rejections == [Rejection(forged_id, "bad-signature")]
    assert agent.state == "unlocked"
    agent.check_in(now=api.clock.now(), sim_mcc_mnc="46000")  # hands over the rejection ack
    [rejected] = loan.events("device_command_rejected")
    assert (rejected.detail["command_id"], rejected.detail["reason"]) == (
        forged_id,
        "bad-signature",
    )
    assert rejected.detail["known"] is False

    # A new SIM (46000 -> 46001) and root are recorded once, as events and flags.
    for _ in range(2):
        agent.check_in(now=api.clock.now(), sim_mcc_mnc="46001", rooted=True)
    [sim] = loan.events("device_sim_changed")
    assert (sim.detail["before"], sim.detail["after"]) == ("46000", "46001")
    assert len(loan.events("device_rooted")) == 1
    status = api.client.get(f"/v1/devices/{device_id}", headers=api.viewer).json()
    assert (status["sim_mcc_mnc"], status["sim_changed"], status["rooted"]) == ("46001", True, True)
    assert status["tampered"] is False and status["last_seen_at"] == "2025-01-15T04:00:00Z"

    # Offline: no contact since 2025-01-15T04:00Z, so the phone locks itself at
    # 2025-01-22T04:00Z (12:00 in Shanghai), not a second earlier.
    assert agent.offline_lock_at == _utc("2025-01-22T04:00:00Z")
    api.clock.current = datetime(2025, 1, 22, 11, 59, 59, tzinfo=SHANGHAI)
    assert not agent.tick(now=api.clock.now())
    api.set_today(2025, 1, 22)
    assert agent.tick(now=api.clock.now())
    assert agent.state == "locked" and agent.message == OFFLINE_LOCK_MESSAGE
    # Back online: the server records the self-lock; the loan is current, so it unlocks.
    assert _actions(agent.check_in(now=api.clock.now(), sim_mcc_mnc="46001", rooted=True)) == [
        "set_offline_deadline",
        "unlock",
    ]
    changes = [(e.detail["before"], e.detail["after"]) for e in loan.events("device_state_changed")]
    assert changes == [("unlocked", "locked")]
    assert agent.state == "unlocked"

    # Operators: a viewer may look but not command; an admin's lock is audited with the name.
    r = api.client.post(
        f"/v1/devices/{device_id}/commands",
        json={"action": "lock", "reason": "phone reported stolen"},
        headers=api.viewer,
    )
    assert r.status_code == 403
    r = api.client.post(
        f"/v1/devices/{device_id}/commands",
        json={"action": "wipe", "reason": "x"},
        headers=api.admin,
    )
    assert r.status_code == 422 and r.json()["field"] == "action"
    r = api.client.get("/v1/devices/no-such-device", headers=api.viewer)
    assert r.status_code == 404 and r.json()["field"] == "device_id"
    r = api.client.post(
        f"/v1/devices/{device_id}/commands",
        json={"action": "lock", "reason": "phone reported stolen"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["action"] == "lock" and r.json()["status"] == "pending"
    assert r.json()["message"] == "此手机已被Mobilend锁定。紧急呼叫仍可使用。客服电话：400-000-0000"
    assert "lock" in _actions(agent.check_in(now=api.clock.now()))
    assert agent.state == "locked"
    held = agent.check_in(now=api.clock.now())
    assert held == [], [(c.action, c.issued_at) for c in held]  # the operator lock holds today
    locks = [(e.actor, e.detail["reason"]) for e in loan.events("device_lock")]
    assert locks == [("test-admin", "operator: phone reported stolen")]
    unlocks = [(e.actor, e.detail["reason"]) for e in loan.events("device_unlock")]
    assert unlocks == [("system", "loan-current")]  # the unlock after the offline self-lock


def test_device_routes_declare_permissions_without_credentials(api: Api) -> None:
    from mobilend.collateral.device_api import router

    permissions = {
        (route.path, next(iter(route.methods))): [  # type: ignore[attr-defined]
            getattr(dep.call, "permission", None)
            for dep in route.dependant.dependencies  # type: ignore[attr-defined]
        ]
        for route in router.routes
    }
    assert permissions == {
        ("/v1/devices/enroll", "POST"): ["devices:enroll"],
        ("/v1/devices/{device_id}/check-in", "POST"): ["devices:check-in"],
        ("/v1/devices/{device_id}", "GET"): ["collateral:read"],
        ("/v1/devices/{device_id}/commands", "GET"): ["collateral:read"],
        ("/v1/devices/{device_id}/commands", "POST"): ["devices:command"],
        ("/v1/devices/policy-runs", "POST"): ["devices:command"],
    }
    # An operator route without a credential is refused; a phone route needs none (it fails
    # here on the unknown token, not on a missing credential).
    assert api.client.post("/v1/devices/policy-runs").status_code == 401
    r = api.client.post(
        "/v1/devices/enroll",
        json={
            "provisioning_token": "x",
            "public_key": commands.generate_keypair()[1],
            "imeis": ["351044630000019"],
            "sim_mcc_mnc": None,
        },
    )
    assert r.status_code == 401 and r.json()["field"] == "provisioning_token"
    assert date(2025, 1, 15) == api.clock.today()
