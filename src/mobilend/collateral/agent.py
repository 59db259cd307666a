"""The reference device agent: what runs on a device-lock phone, in plain Python.

It enrolls with a one-time provisioning token and its own Ed25519 key, pins the server's
public key from the enrollment answer, then checks in: each check-in is signed, carries the
acknowledgements of the commands handled since the previous one, and brings back signed
commands. Every command is verified (signature, device, expiry, replay) before it is obeyed;
a rejected one is recorded and acknowledged as "rejected", never obeyed. Lock and unlock
commands are applied in the order they were issued, and one older than the last applied is
"superseded". The offline deadline is extended only by a signed ``set_offline_deadline``;
the unsigned ``offline_lock_at`` of a check-in answer may only bring it forward. `tick`
locks the phone once the deadline passes without contact. A release ends the agent: it
sends one last check-in acknowledging it, forgets its keys and obeys nothing more.

The agent never reads a clock: every call takes ``now``. It talks through a ``transport``
(path, JSON body) -> JSON answer, so tests can use an in-process server; `http_transport`
builds one on httpx (imported lazily: httpx is a development dependency).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mobilend.collateral.commands import (
    ID_PATTERN,
    MAX_ACKS,
    Command,
    CommandRejected,
    b64url_encode,
    format_utc,
    generate_keypair,
    load_public_key,
    new_check_in,
    parse_utc,
    private_key_from_pem,
    private_key_to_pem,
    public_key_b64,
    sign_check_in,
    verify_command,
)
from mobilend.core.errors import ValidationFailed

if TYPE_CHECKING:
    import httpx

Transport = Callable[[str, dict[str, Any]], dict[str, Any]]

ENROLL_PATH = "/v1/devices/enroll"
# What a locked phone still runs (see docs/device-lock.md): emergency calls, the lender's
# payment app, a call to customer service, and settings (Wi-Fi/mobile data to reach us).
LOCKED_ALLOWLIST = ("emergency-calls", "payment-app", "customer-service-call", "settings")
DEFAULT_LOCK_MESSAGE = "This phone is locked by the lender. Pay in the payment app to unlock it."
OFFLINE_LOCK_MESSAGE = (
    "This phone has not reached the lender for too long and is locked. "
    "Connect to the internet and open the payment app to unlock it."
)
STATE_COMMANDS = ("lock", "unlock")


def check_in_path(device_id: str) -> str:
    return f"/v1/devices/{device_id}/check-in"


class AgentError(Exception):
    """The agent cannot do what was asked (not enrolled, released, a bad server answer)."""


@dataclass(frozen=True)
class Rejection:
    """A command the agent refused: its id (None when unreadable) and why."""

    command_id: str | None
    reason: str


def http_transport(
    base_url: str, client: httpx.Client | None = None, *, timeout: float = 10.0
) -> Transport:
    """POST JSON to base_url + path; raise on an HTTP error; return the JSON object."""
    import httpx

    http = client if client is not None else httpx.Client(timeout=timeout)
    root = base_url.rstrip("/")

    def send(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(root + path, json=body)
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict):
            raise AgentError("the server answered with something other than a JSON object")
        return answer

    return send


def _peek_command_id(envelope: Any) -> str | None:
    """The command id of an unverified envelope, for the rejection ack only (never trusted)."""
    try:
        text = envelope["payload"]
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        command_id = data["command_id"]
    except Exception:  # anything unreadable simply has no id
        return None
    return command_id if isinstance(command_id, str) and ID_PATTERN.fullmatch(command_id) else None


class DeviceAgent:
    """One phone's agent. Public attributes are there for tests and the demo to inspect."""

    def __init__(
        self,
        transport: Transport,
        *,
        private_key: Ed25519PrivateKey | None = None,
        state_file: Path | None = None,
        clock_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self.transport = transport
        self.state_file = state_file
        self.clock_skew = clock_skew
        self.private_key: Ed25519PrivateKey | None = private_key
        self.server_public_key: Ed25519PublicKey | None = None
        self.server_key_id: str | None = None
        self.device_id: str | None = None
        self.imeis: list[str] = []
        self.state = "unlocked"
        self.check_in_every_seconds: int | None = None
        self.last_check_in: datetime | None = None
        self.offline_lock_at: datetime | None = None
        self.message: str | None = None
        self.support_phone: str | None = None
        self.seen_nonces: dict[str, datetime] = {}  # nonce -> the command's expiry
        self.pending_acks: list[dict[str, Any]] = []
        self.executed: list[Command] = []
        self.rejections: list[Rejection] = []
        self.final_ack_sent: bool | None = None  # set once released
        self.last_applied: dict[str, datetime] = {}  # "state"/"deadline" -> latest issued_at

    # -- enrollment and check-in ---------------------------------------------------------

    @property
    def public_key(self) -> str | None:
        return None if self.private_key is None else public_key_b64(self.private_key)

    def enroll(
        self,
        provisioning_token: str,
        imeis: Iterable[str],
        sim_mcc_mnc: str | None = None,
        *,
        now: datetime,
    ) -> None:
        """Register this phone's key; pin the server key from the answer (trust on first use)."""
        if self.device_id is not None:
            raise AgentError("already enrolled")
        if self.private_key is None:
            self.private_key, _ = generate_keypair()
        self.imeis = list(imeis)
        answer = self.transport(
            ENROLL_PATH,
            {
                "provisioning_token": provisioning_token,
                "public_key": self.public_key,
                "imeis": self.imeis,
                "sim_mcc_mnc": sim_mcc_mnc,
            },
        )
        try:
            self._take_enrollment(answer)
        except (KeyError, TypeError, ValidationFailed) as exc:
            raise AgentError(f"bad enrollment answer: {exc}") from exc
        self.last_check_in = now
        self._save()

    def _take_enrollment(self, answer: Mapping[str, Any]) -> None:
        every = answer["check_in_every_seconds"]
        if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
            raise TypeError("check_in_every_seconds must be a positive integer")
        if not isinstance(answer["device_id"], str) or not isinstance(answer["server_key_id"], str):
            raise TypeError("device_id and server_key_id must be strings")
        self.server_public_key = load_public_key(answer["server_public_key"])
        self.offline_lock_at = parse_utc(answer["offline_lock_at"], field="offline_lock_at")
        self.server_key_id = answer["server_key_id"]
        self.check_in_every_seconds = every
        self.device_id = answer["device_id"]

    def check_in(
        self,
        *,
        now: datetime,
        sim_mcc_mnc: str | None = None,
        rooted: bool = False,
        tampered: bool = False,
    ) -> list[Command]:
        """Report in, hand over the acks, and handle the commands that come back.

        Returns the commands obeyed. A transport error propagates and changes nothing (the
        acks stay pending for the next check-in).
        """
        device_id, private_key = self._require_active()
        acks = self.pending_acks[:MAX_ACKS]  # the rest go with the next check-in
        payload = new_check_in(
            device_id=device_id,
            now=now,
            state=self.state,
            imeis=self.imeis,
            sim_mcc_mnc=sim_mcc_mnc,
            rooted=rooted,
            tampered=tampered,
            acks=acks,
        )
        answer = self.transport(check_in_path(device_id), sign_check_in(private_key, payload))
        commands = answer.get("commands") if isinstance(answer, dict) else None
        if not isinstance(commands, list):
            raise AgentError("the check-in answer has no list of commands")
        del self.pending_acks[: len(acks)]
        self.last_check_in = now
        self._take_unsigned_deadline(answer.get("offline_lock_at"))
        obeyed = self.handle_commands(commands, now=now)
        if self.state == "released":
            self._say_goodbye(now=now, sim_mcc_mnc=sim_mcc_mnc, rooted=rooted, tampered=tampered)
        self._save()
        return obeyed

    def _require_active(self) -> tuple[str, Ed25519PrivateKey]:
        if self.state == "released":
            raise AgentError("released: this agent no longer checks in")
        if self.device_id is None or self.private_key is None:
            raise AgentError("not enrolled")
        return self.device_id, self.private_key

    def _take_unsigned_deadline(self, text: Any) -> None:
        """An unsigned deadline may only bring the self-lock forward, never push it back."""
        try:
            deadline = parse_utc(text, field="offline_lock_at")
        except ValidationFailed:
            return
        if self.offline_lock_at is None or deadline < self.offline_lock_at:
            self.offline_lock_at = deadline

    def _say_goodbye(
        self, *, now: datetime, sim_mcc_mnc: str | None, rooted: bool, tampered: bool
    ) -> None:
        """One last signed check-in (state released, with the acks), then forget the keys."""
        assert self.device_id is not None and self.private_key is not None
        payload = new_check_in(
            device_id=self.device_id,
            now=now,
            state="released",
            imeis=self.imeis,
            sim_mcc_mnc=sim_mcc_mnc,
            rooted=rooted,
            tampered=tampered,
            acks=self.pending_acks[:MAX_ACKS],
        )
        try:
            self.transport(check_in_path(self.device_id), sign_check_in(self.private_key, payload))
            self.final_ack_sent = True
        except Exception:  # the phone is released whatever the network does
            self.final_ack_sent = False
        self.pending_acks = []
        self.private_key = None
        self.server_public_key = None
        self.seen_nonces = {}

    # -- commands ------------------------------------------------------------------------

    def handle_commands(self, envelopes: Iterable[Any], *, now: datetime) -> list[Command]:
        """Verify each envelope, then obey the valid ones in the order they were issued."""
        self._forget_old_nonces(now)
        verified: list[Command] = []
        for envelope in envelopes:
            if self.state == "released":
                self._reject(_peek_command_id(envelope), "released")
                continue
            if self.server_public_key is None or self.device_id is None:
                self._reject(_peek_command_id(envelope), "not-enrolled")
                continue
            try:
                command = verify_command(
                    self.server_public_key,
                    envelope,
                    device_id=self.device_id,
                    now=now,
                    seen_nonces=self.seen_nonces,
                    clock_skew=self.clock_skew,
                )
            except CommandRejected as exc:
                self._reject(_peek_command_id(envelope), exc.reason)
                continue
            self.seen_nonces[command.nonce] = command.expires_at
            verified.append(command)
        obeyed = [c for c in sorted(verified, key=lambda c: c.issued_at) if self._obey(c)]
        self._save()
        return obeyed

    def _forget_old_nonces(self, now: datetime) -> None:
        """A nonce can be dropped once its command is expired beyond the clock skew."""
        self.seen_nonces = {
            nonce: expires
            for nonce, expires in self.seen_nonces.items()
            if now < expires + self.clock_skew
        }

    def _reject(self, command_id: str | None, reason: str) -> None:
        self.rejections.append(Rejection(command_id, reason))
        if command_id is not None and self.state != "released":
            self.pending_acks.append(
                {"command_id": command_id, "result": "rejected", "reason": reason}
            )

    def _obey(self, command: Command) -> bool:
        if self.state == "released":
            self._reject(command.command_id, "released")
            return False
        if self._superseded(command):
            self._reject(command.command_id, "superseded")
            return False
        if command.action == "lock":
            self.state = "locked"
            self.message = command.message or DEFAULT_LOCK_MESSAGE
        elif command.action == "unlock":
            self.state = "unlocked"
            self.message = command.message
        elif command.action == "reminder":
            self.message = command.message
        elif command.action == "release":
            self.state = "released"
            self.message = command.message
        else:  # set_offline_deadline
            self.offline_lock_at = command.offline_lock_at
        if command.support_phone is not None:
            self.support_phone = command.support_phone
        self.executed.append(command)
        self.pending_acks.append(
            {"command_id": command.command_id, "result": "done", "reason": None}
        )
        return True

    def _superseded(self, command: Command) -> bool:
        """Lock/unlock, and deadlines, apply newest-issued last: an older one is stale."""
        if command.action in STATE_COMMANDS:
            kind = "state"
        elif command.action == "set_offline_deadline":
            kind = "deadline"
        else:
            return False
        last = self.last_applied.get(kind)
        if last is not None and command.issued_at < last:
            return True
        self.last_applied[kind] = command.issued_at
        return False

    # -- the phone itself ----------------------------------------------------------------

    def tick(self, *, now: datetime) -> bool:
        """Self-lock once the offline deadline has passed; True if this call locked the phone."""
        if self.state != "unlocked" or self.offline_lock_at is None:
            return False
        if now < self.offline_lock_at:
            return False
        self.state = "locked"
        self.message = OFFLINE_LOCK_MESSAGE
        self._save()
        return True

    def allowed_apps(self) -> tuple[str, ...] | None:
        """While locked, the allowlist; otherwise None (nothing is restricted)."""
        return LOCKED_ALLOWLIST if self.state == "locked" else None

    # -- persistence (optional) ----------------------------------------------------------

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {
            "device_id": self.device_id,
            "private_key_pem": (
                None if self.private_key is None else private_key_to_pem(self.private_key).decode()
            ),
            "server_public_key": (
                None if self.server_public_key is None else _public_b64(self.server_public_key)
            ),
            "server_key_id": self.server_key_id,
            "imeis": self.imeis,
            "state": self.state,
            "check_in_every_seconds": self.check_in_every_seconds,
            "last_check_in": _time_or_none(self.last_check_in),
            "offline_lock_at": _time_or_none(self.offline_lock_at),
            "message": self.message,
            "support_phone": self.support_phone,
            "seen_nonces": {n: format_utc(t) for n, t in self.seen_nonces.items()},
            "pending_acks": self.pending_acks,
            "last_applied": {k: format_utc(t) for k, t in self.last_applied.items()},
        }
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, state_file: Path, transport: Transport, **kwargs: Any) -> DeviceAgent:
        """An agent restored from its state file (keys, pinned server key, nonces, state)."""
        data = json.loads(state_file.read_text(encoding="utf-8"))
        pem = data["private_key_pem"]
        agent = cls(
            transport,
            private_key=None if pem is None else private_key_from_pem(pem.encode()),
            state_file=state_file,
            **kwargs,
        )
        if data["server_public_key"] is not None:
            agent.server_public_key = load_public_key(data["server_public_key"])
        agent.device_id = data["device_id"]
        agent.server_key_id = data["server_key_id"]
        agent.imeis = list(data["imeis"])
        agent.state = data["state"]
        agent.check_in_every_seconds = data["check_in_every_seconds"]
        agent.last_check_in = _parse_or_none(data["last_check_in"], "last_check_in")
        agent.offline_lock_at = _parse_or_none(data["offline_lock_at"], "offline_lock_at")
        agent.message = data["message"]
        agent.support_phone = data["support_phone"]
        agent.seen_nonces = {
            n: parse_utc(t, field="seen_nonces") for n, t in data["seen_nonces"].items()
        }
        agent.pending_acks = list(data["pending_acks"])
        agent.last_applied = {
            k: parse_utc(t, field="last_applied") for k, t in data["last_applied"].items()
        }
        return agent


def _public_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url_encode(raw)


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def _parse_or_none(text: str | None, field: str) -> datetime | None:
    return None if text is None else parse_utc(text, field=field)
