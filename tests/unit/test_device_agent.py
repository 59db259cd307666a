"""The reference device agent against a tiny in-test server built from the signing functions.

The real server API gets its own integration test; here the server is a function that
answers enrollments and check-ins and hands out whatever signed commands a test queued.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobilend.collateral.agent import (
    LOCKED_ALLOWLIST,
    OFFLINE_LOCK_MESSAGE,
    AgentError,
    DeviceAgent,
    Rejection,
    http_transport,
)
from mobilend.collateral.commands import (
    format_utc,
    generate_keypair,
    load_public_key,
    new_command,
    sign_command,
    verify_check_in,
)

T0 = datetime(2026, 3, 10, 8, 0, 0, tzinfo=UTC)
IMEI = "490154203237518"
DEADLINE = "2026-03-17T08:00:00Z"  # enrollment at T0 + 7 days


def at(days: float = 0, **kwargs: float) -> datetime:
    return T0 + timedelta(days=days, **kwargs)


class FakeServer:
    """Enrolls one phone as dev-1, verifies its check-ins, and delivers queued commands."""

    def __init__(self) -> None:
        self.key, self.public_key = generate_keypair()
        self.device_key: Any = None
        self.now = T0
        self.outbox: list[Any] = []
        self.check_ins: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.offline_lock_at = DEADLINE
        self.fail = False

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise httpx.ConnectError("no network")
        if path == "/v1/devices/enroll":
            assert body["provisioning_token"] == "tok-123"
            assert body["imeis"] == [IMEI]
            self.device_key = load_public_key(body["public_key"])
            return {
                "device_id": "dev-1",
                "server_public_key": self.public_key,
                "server_key_id": "srv-1",
                "check_in_every_seconds": 3600,
                "offline_lock_at": DEADLINE,
            }
        assert path == "/v1/devices/dev-1/check-in"
        payload = verify_check_in(
            self.device_key, body, device_id="dev-1", now=self.now, seen_nonces=self.seen
        )
        self.seen.add(payload["nonce"])
        self.check_ins.append(payload)
        commands, self.outbox = self.outbox, []
        return {
            "server_time": format_utc(self.now),
            "commands": commands,
            "offline_lock_at": self.offline_lock_at,
        }

    def command(self, action: str, *, issued: datetime, key: Any = None, **kwargs: Any) -> Any:
        """Queue a signed command (signed by `key` to forge one) and return its envelope."""
        args: dict[str, Any] = {"device_id": "dev-1", "ttl": timedelta(hours=72)}
        args.update(kwargs)
        command = new_command(action=action, now=issued, **args)
        envelope = sign_command(key or self.key, command, key_id="srv-1")
        self.outbox.append(envelope)
        return envelope


def check_in(agent: DeviceAgent, server: FakeServer, when: datetime, **kwargs: Any) -> Any:
    server.now = when
    return agent.check_in(now=when, **kwargs)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def agent(server: FakeServer) -> DeviceAgent:
    device = DeviceAgent(server)
    device.enroll("tok-123", [IMEI], "63902", now=T0)
    return device


def test_enrollment_pins_the_server_key(agent: DeviceAgent, server: FakeServer) -> None:
    assert agent.device_id == "dev-1" and agent.server_key_id == "srv-1"
    assert agent.check_in_every_seconds == 3600
    assert agent.offline_lock_at == datetime(2026, 3, 17, 8, 0, tzinfo=UTC)
    assert agent.last_check_in == T0
    assert agent.public_key is not None and len(agent.public_key) == 43
    assert (agent.state, agent.allowed_apps()) == ("unlocked", None)
    with pytest.raises(AgentError):
        agent.enroll("tok-123", [IMEI], now=T0)


def test_bad_enrollment_answer() -> None:
    def answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"device_id": "dev-1", "server_public_key": "nope", "server_key_id": "srv-1"}

    with pytest.raises(AgentError):
        DeviceAgent(answer).enroll("tok-123", [IMEI], now=T0)


def test_lock_then_unlock(agent: DeviceAgent, server: FakeServer) -> None:
    lock = server.command(
        "lock", issued=at(5), message="Payment 5 days late.", support_phone="+254700000000"
    )
    obeyed = check_in(agent, server, at(5, minutes=1))
    assert [c.action for c in obeyed] == ["lock"]
    assert agent.state == "locked" and agent.message == "Payment 5 days late."
    assert agent.support_phone == "+254700000000"
    assert agent.allowed_apps() == LOCKED_ALLOWLIST
    assert "emergency-calls" in LOCKED_ALLOWLIST and "payment-app" in LOCKED_ALLOWLIST

    unlock = server.command("unlock", issued=at(6))
    check_in(agent, server, at(6, minutes=1))
    assert agent.state == "unlocked"
    assert agent.message is None and agent.allowed_apps() is None
    # Each check-in reports the state and acknowledges what was handled since the last one.
    first_lock_id = json.loads(_payload(lock))["command_id"]
    assert server.check_ins[1]["state"] == "locked"
    assert server.check_ins[1]["acks"] == [
        {"command_id": first_lock_id, "result": "done", "reason": None}
    ]
    check_in(agent, server, at(7))
    assert server.check_ins[2]["state"] == "unlocked"
    assert (
        server.check_ins[2]["acks"][0]["command_id"] == json.loads(_payload(unlock))["command_id"]
    )
    assert [c.action for c in agent.executed] == ["lock", "unlock"]


def _payload(envelope: dict[str, str]) -> bytes:
    text = envelope["payload"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_reminder_shows_a_message_only(agent: DeviceAgent, server: FakeServer) -> None:
    server.command("reminder", issued=at(1), message="Payment due on 10 March.")
    check_in(agent, server, at(1))
    assert (agent.state, agent.message) == ("unlocked", "Payment due on 10 March.")


def test_forged_command_is_recorded_and_acked_never_obeyed(
    agent: DeviceAgent, server: FakeServer
) -> None:
    thief, _ = generate_keypair()
    server.command("unlock", issued=at(1), key=thief, command_id="cmd-forged")
    assert check_in(agent, server, at(1)) == []
    assert agent.state == "unlocked" and agent.executed == []
    assert agent.rejections == [Rejection("cmd-forged", "bad-signature")]
    check_in(agent, server, at(1, hours=1))
    assert server.check_ins[-1]["acks"] == [
        {"command_id": "cmd-forged", "result": "rejected", "reason": "bad-signature"}
    ]


def test_replayed_command_is_refused(agent: DeviceAgent, server: FakeServer) -> None:
    lock = server.command("lock", issued=at(5), command_id="cmd-lock")
    check_in(agent, server, at(5))
    server.command("unlock", issued=at(5, hours=2))
    check_in(agent, server, at(5, hours=2))
    assert agent.state == "unlocked"
    server.outbox.append(lock)  # an eavesdropper sends the old lock again
    check_in(agent, server, at(5, hours=3))
    assert agent.state == "unlocked"
    assert agent.rejections == [Rejection("cmd-lock", "replayed")]


def test_the_same_command_twice_in_one_answer(agent: DeviceAgent, server: FakeServer) -> None:
    lock = server.command("lock", issued=at(5), command_id="cmd-lock")
    server.outbox.append(lock)
    assert [c.action for c in check_in(agent, server, at(5))] == ["lock"]
    assert agent.rejections == [Rejection("cmd-lock", "replayed")]


def test_expired_and_wrong_device_commands(agent: DeviceAgent, server: FakeServer) -> None:
    # Issued 03-10 08:00 with 72 h to live: expires 03-13 08:00, + 5 min skew = 08:05.
    server.command("lock", issued=T0, command_id="cmd-old")
    server.command("lock", issued=at(3), command_id="cmd-dev2", device_id="dev-2")
    check_in(agent, server, at(3, minutes=5))
    assert agent.state == "unlocked"
    assert agent.rejections == [
        Rejection("cmd-old", "expired"),
        Rejection("cmd-dev2", "wrong-device"),
    ]


def test_lock_and_unlock_apply_in_issue_order(agent: DeviceAgent, server: FakeServer) -> None:
    # Delivered out of order in one answer: the later-issued lock wins.
    lock = server.command("lock", issued=at(5, hours=10), command_id="cmd-lock")
    unlock = server.command("unlock", issued=at(5, hours=9), command_id="cmd-unlock")
    server.outbox = [lock, unlock]
    check_in(agent, server, at(5, hours=11))
    assert agent.state == "locked"
    assert [c.command_id for c in agent.executed] == ["cmd-unlock", "cmd-lock"]
    # An older unlock held back and delivered later is stale.
    server.command("unlock", issued=at(5, hours=8), command_id="cmd-stale")
    check_in(agent, server, at(5, hours=12))
    assert agent.state == "locked"
    assert agent.rejections == [Rejection("cmd-stale", "superseded")]


def test_offline_self_lock(agent: DeviceAgent) -> None:
    assert agent.tick(now=datetime(2026, 3, 17, 7, 59, 59, tzinfo=UTC)) is False
    assert agent.state == "unlocked"
    assert agent.tick(now=datetime(2026, 3, 17, 8, 0, 0, tzinfo=UTC)) is True
    assert (agent.state, agent.message) == ("locked", OFFLINE_LOCK_MESSAGE)
    assert agent.allowed_apps() == LOCKED_ALLOWLIST
    assert agent.tick(now=datetime(2026, 3, 18, tzinfo=UTC)) is False  # already locked


def test_only_a_signed_deadline_moves_the_self_lock_later(
    agent: DeviceAgent, server: FakeServer
) -> None:
    server.offline_lock_at = "2027-01-01T00:00:00Z"  # unsigned: ignored when later
    check_in(agent, server, at(1))
    assert agent.offline_lock_at == datetime(2026, 3, 17, 8, 0, tzinfo=UTC)
    new_deadline = datetime(2026, 3, 18, 8, 0, tzinfo=UTC)
    server.command("set_offline_deadline", issued=at(1, hours=1), offline_lock_at=new_deadline)
    check_in(agent, server, at(1, hours=1))
    assert agent.offline_lock_at == new_deadline
    assert agent.tick(now=datetime(2026, 3, 17, 9, 0, tzinfo=UTC)) is False
    server.offline_lock_at = "2026-03-15T00:00:00Z"  # unsigned but earlier: taken
    check_in(agent, server, at(2))
    assert agent.offline_lock_at == datetime(2026, 3, 15, 0, 0, tzinfo=UTC)


def test_release_ends_the_agent(agent: DeviceAgent, server: FakeServer) -> None:
    server.command("lock", issued=at(5), command_id="cmd-lock")
    check_in(agent, server, at(5))
    server.command("release", issued=at(20), command_id="cmd-release")
    server.command("lock", issued=at(20, minutes=1), command_id="cmd-after")
    check_in(agent, server, at(20, minutes=2))
    assert agent.state == "released" and agent.allowed_apps() is None
    assert [c.command_id for c in agent.executed] == ["cmd-lock", "cmd-release"]
    assert Rejection("cmd-after", "released") in agent.rejections
    # One last signed check-in acknowledges the release; then the keys are gone.
    assert agent.final_ack_sent is True
    goodbye = server.check_ins[-1]
    assert goodbye["state"] == "released"
    assert {"command_id": "cmd-release", "result": "done", "reason": None} in goodbye["acks"]
    assert agent.private_key is None and agent.server_public_key is None
    count = len(server.check_ins)
    with pytest.raises(AgentError):
        check_in(agent, server, at(21))
    assert len(server.check_ins) == count
    # Even a valid signed lock handed over directly is refused.
    lock = server.command("lock", issued=at(21), command_id="cmd-late")
    assert agent.handle_commands([lock], now=at(21)) == []
    assert agent.state == "released"
    assert agent.rejections[-1] == Rejection("cmd-late", "released")
    assert agent.tick(now=at(400)) is False and agent.state == "released"


def test_network_failure_keeps_the_acks(agent: DeviceAgent, server: FakeServer) -> None:
    server.command("lock", issued=at(5), command_id="cmd-lock")
    check_in(agent, server, at(5))
    server.fail = True
    with pytest.raises(httpx.ConnectError):
        check_in(agent, server, at(5, hours=1))
    assert agent.last_check_in == at(5)
    server.fail = False
    check_in(agent, server, at(5, hours=2))
    assert [a["command_id"] for a in server.check_ins[-1]["acks"]] == ["cmd-lock"]
    check_in(agent, server, at(5, hours=3))
    assert server.check_ins[-1]["acks"] == []


def test_device_flags_reach_the_server(agent: DeviceAgent, server: FakeServer) -> None:
    check_in(agent, server, at(1), sim_mcc_mnc="63903", rooted=True, tampered=True)
    sent = server.check_ins[-1]
    assert (sent["sim_mcc_mnc"], sent["rooted"], sent["tampered"]) == ("63903", True, True)
    assert (sent["imeis"], sent["sent_at"]) == ([IMEI], "2026-03-11T08:00:00Z")


def test_state_file_survives_a_restart(server: FakeServer, tmp_path: Path) -> None:
    state_file = tmp_path / "agent.json"
    first = DeviceAgent(server, state_file=state_file)
    first.enroll("tok-123", [IMEI], now=T0)
    lock = server.command("lock", issued=at(5), command_id="cmd-lock")
    check_in(first, server, at(5))
    again = DeviceAgent.load(state_file, server)
    assert (again.device_id, again.state, again.public_key) == ("dev-1", "locked", first.public_key)
    assert again.offline_lock_at == first.offline_lock_at
    assert again.handle_commands([lock], now=at(5, hours=1)) == []
    assert again.rejections == [Rejection("cmd-lock", "replayed")]
    server.command("unlock", issued=at(5, hours=2))
    check_in(again, server, at(5, hours=2))
    assert again.state == "unlocked"


def test_http_transport_posts_json_to_the_paths() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), json.loads(request.content)))
        if request.url.path.endswith("/check-in"):
            return httpx.Response(503, json={"title": "down"})
        return httpx.Response(200, json={"ok": True})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    send = http_transport("https://lender.test/", client)
    assert send("/v1/devices/enroll", {"a": 1}) == {"ok": True}
    assert seen == [("POST", "https://lender.test/v1/devices/enroll", {"a": 1})]
    with pytest.raises(httpx.HTTPStatusError):
        send("/v1/devices/dev-1/check-in", {})


def test_junk_commands_cannot_jam_the_check_ins(agent: DeviceAgent, server: FakeServer) -> None:
    junk = json.dumps({"command_id": "not an id!"}).encode()
    unreadable = {
        "payload": base64.urlsafe_b64encode(junk).decode().rstrip("="),
        "signature": "A" * 86,
        "key_id": "srv-1",
    }
    thief, _ = generate_keypair()
    server.outbox.append(unreadable)
    for n in range(150):
        server.command("unlock", issued=at(1), key=thief, command_id=f"cmd-{n}")
    check_in(agent, server, at(1))
    assert len(agent.rejections) == 151
    assert agent.rejections[0] == Rejection(None, "bad-signature")  # no usable id: no ack
    check_in(agent, server, at(1, minutes=1))
    check_in(agent, server, at(1, minutes=2))
    assert [len(c["acks"]) for c in server.check_ins[-2:]] == [100, 50]  # 100 per check-in
    assert server.check_ins[-1]["acks"][-1]["command_id"] == "cmd-149"
