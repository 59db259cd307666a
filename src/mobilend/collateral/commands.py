"""Signed device-lock commands and signed device check-ins (pure).

The server and the device agent talk in *envelopes*: ``{"payload", "signature", "key_id"}``
where ``payload`` is the base64url (no padding) of the canonical JSON bytes of a payload and
``signature`` the base64url of the Ed25519 signature over exactly those bytes. Verifying the
bytes as received means no re-canonicalisation is needed, and the JSON is parsed only after the
signature holds.

- Commands go server -> device, signed with the server's key (``key_id`` names that key).
- Check-ins go device -> server, signed with the device's own key (``key_id`` is the device id).

A verifier rejects with `CommandRejected(reason)`, reason one of `REJECT_REASONS`. Times on the
wire are UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``. Nothing here reads a clock: every check
takes ``now``. Randomness is used only for default nonces, command ids and new keys.
See docs/device-lock.md for the wire format and the rules.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mobilend.core.canonical import canonical_json
from mobilend.core.errors import MobilendError, ValidationFailed

VERSION = 1
ACTIONS = ("lock", "unlock", "reminder", "release", "set_offline_deadline")
DEVICE_STATES = ("unlocked", "locked", "released")
ACK_RESULTS = ("done", "rejected")
LOCK_MESSAGE_MAX = 350  # Knox Guard's lock-screen message
REMINDER_MESSAGE_MAX = 200  # Knox Guard's blink reminder; also the cap for other actions
NONCE_MIN_BYTES = 16
NONCE_MAX_BYTES = 64
MAX_PAYLOAD_CHARS = 16_384  # base64url characters of one envelope's payload
MAX_IMEIS = 4
MAX_ACKS = 100
REJECT_REASONS = frozenset(
    {
        "bad-signature",
        "malformed",
        "wrong-device",
        "expired",
        "not-yet-valid",
        "replayed",
        "unsupported-version",
    }
)

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # device, command and key ids
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_UTC_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{2,31}")
_IMEI = re.compile(r"[0-9]{14,16}")
_MCC_MNC = re.compile(r"[0-9]{5,6}")
_COMMAND_KEYS = frozenset(
    {
        "v",
        "command_id",
        "device_id",
        "action",
        "nonce",
        "issued_at",
        "expires_at",
        "message",
        "offline_lock_at",
        "support_phone",
    }
)
_CHECK_IN_KEYS = frozenset(
    {"v", "device_id", "sent_at", "nonce", "state", "imeis", "sim_mcc_mnc", "rooted", "tampered"}
    | {"acks"}
)
_ACK_KEYS = frozenset({"command_id", "result", "reason"})
_ENVELOPE_KEYS = frozenset({"payload", "signature", "key_id"})


class CommandRejected(MobilendError):
    """A signed envelope failed verification; `reason` is one of `REJECT_REASONS`.

    A MobilendError with status 400, so a server route that lets it escape answers with a
    problem (type "command-rejected", field "envelope", rule = the reason).
    """

    type = "command-rejected"
    title = "Signed message rejected"
    status = 400

    def __init__(self, reason: str, detail: str | None = None) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(detail or reason, field="envelope", rule=reason)
        self.reason = reason


# -- encodings ---------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, field: str) -> bytes:
    """Strict base64url without padding: other characters or a non-canonical tail fail."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValidationFailed(field, "base64url", f"{field} is not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(field, "base64url", f"{field} is not base64url") from exc
    if b64url_encode(data) != text:
        raise ValidationFailed(field, "base64url", f"{field} is not canonical base64url")
    return data


def format_utc(moment: datetime, *, field: str = "time") -> str:
    """'2026-03-10T08:00:00Z' (whole seconds; an aware datetime is converted to UTC)."""
    _require_aware(moment, field)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: Any, *, field: str) -> datetime:
    """Parse exactly 'YYYY-MM-DDTHH:MM:SSZ' into an aware UTC datetime."""
    if not isinstance(text, str) or not _UTC_TEXT.fullmatch(text):
        raise ValidationFailed(field, "utc-time", f"{field} must look like 2026-03-10T08:00:00Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationFailed(field, "utc-time", f"{field} is not a real time") from exc


def new_nonce() -> str:
    """16 random bytes, base64url (22 characters)."""
    return b64url_encode(secrets.token_bytes(NONCE_MIN_BYTES))


# -- keys --------------------------------------------------------------------------------


def generate_keypair() -> tuple[Ed25519PrivateKey, str]:
    """A new Ed25519 key and its public key as base64url of the 32 raw bytes."""
    private_key = Ed25519PrivateKey.generate()
    return private_key, public_key_b64(private_key)


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return b64url_encode(raw)


def load_public_key(text: str) -> Ed25519PublicKey:
    """The Ed25519 public key from base64url of its 32 raw bytes."""
    try:
        raw = b64url_decode(text, field="public_key")
    except ValidationFailed as exc:
        raise ValidationFailed("public_key", "ed25519-format", exc.detail) from exc
    if len(raw) != 32:
        raise ValidationFailed(
            "public_key", "ed25519-format", f"public_key must be 32 bytes, got {len(raw)}"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValidationFailed("public_key", "ed25519-format", str(exc)) from exc


def private_key_to_pem(private_key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM; encrypted with the best available scheme when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_from_pem(pem: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationFailed("private_key", "ed25519-pem", f"cannot load key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationFailed("private_key", "ed25519-pem", "the PEM key is not an Ed25519 key")
    return key


# -- field checks ------------------------------------------------------------------------


def _require_aware(moment: Any, field: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValidationFailed(field, "timezone-aware", f"{field} must be a timezone-aware time")


def _check_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValidationFailed(field, "id-format", f"{field} must be 1-128 of [A-Za-z0-9._:-]")
    return value


def _check_nonce(value: Any) -> str:
    raw = b64url_decode(value, field="nonce")
    if not NONCE_MIN_BYTES <= len(raw) <= NONCE_MAX_BYTES:
        raise ValidationFailed(
            "nonce", "nonce-length", f"nonce must be {NONCE_MIN_BYTES}-{NONCE_MAX_BYTES} bytes"
        )
    return str(value)


def _check_text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(field, "text", f"{field} must be non-empty text or null")
    if len(value) > limit:
        raise ValidationFailed(
            field, "max-length", f"{field} has {len(value)} characters, at most {limit} allowed"
        )
    return value


def _check_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(field, "boolean", f"{field} must be true or false")
    return value


def _check_keys(obj: Any, expected: frozenset[str], field: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValidationFailed(field, "object", f"{field} must be a JSON object")
    missing = sorted(expected - set(obj))
    extra = sorted(str(key) for key in set(obj) - expected)
    if missing or extra:
        raise ValidationFailed(
            field, "fields", f"{field}: missing {missing or 'none'}, unknown {extra or 'none'}"
        )
    return obj


def _check_version(value: Any) -> None:
    if type(value) is not int:
        raise ValidationFailed("v", "integer", "v must be an integer")
    if value != VERSION:
        raise ValidationFailed("v", "unsupported-version", f"version {value} is not supported")


# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One server -> device instruction, exactly the signed payload (times as UTC datetimes).

    `message` is the text the phone shows: at most 350 characters on a lock, 200 otherwise, and
    required on a reminder. `offline_lock_at` belongs to set_offline_deadline only, and is
    required there.
    """

    command_id: str
    device_id: str
    action: str
    nonce: str
    issued_at: datetime
    expires_at: datetime
    message: str | None = None
    offline_lock_at: datetime | None = None
    support_phone: str | None = None
    v: int = VERSION

    def __post_init__(self) -> None:
        _check_version(self.v)
        _check_id(self.command_id, "command_id")
        _check_id(self.device_id, "device_id")
        if self.action not in ACTIONS:
            raise ValidationFailed(
                "action", "one-of", f"action must be one of {', '.join(ACTIONS)}"
            )
        _check_nonce(self.nonce)
        for field in ("issued_at", "expires_at", "offline_lock_at"):
            moment = getattr(self, field)
            if moment is None:
                continue
            _require_aware(moment, field)
            if moment.microsecond:
                raise ValidationFailed(field, "whole-seconds", f"{field} must be whole seconds")
        if self.expires_at <= self.issued_at:
            raise ValidationFailed("expires_at", "after-issued", "expires_at must follow issued_at")
        limit = LOCK_MESSAGE_MAX if self.action == "lock" else REMINDER_MESSAGE_MAX
        _check_text(self.message, "message", limit)
        if self.action == "reminder" and self.message is None:
            raise ValidationFailed("message", "required", "a reminder needs a message")
        if (self.action == "set_offline_deadline") != (self.offline_lock_at is not None):
            raise ValidationFailed(
                "offline_lock_at",
                "set_offline_deadline-only",
                "offline_lock_at is required on set_offline_deadline and allowed nowhere else",
            )
        phone = self.support_phone
        if phone is not None and (not isinstance(phone, str) or not _PHONE.fullmatch(phone)):
            raise ValidationFailed("support_phone", "phone", "support_phone is not a phone number")

    def to_payload(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "command_id": self.command_id,
            "device_id": self.device_id,
            "action": self.action,
            "nonce": self.nonce,
            "issued_at": format_utc(self.issued_at),
            "expires_at": format_utc(self.expires_at),
            "message": self.message,
            "offline_lock_at": (
                None if self.offline_lock_at is None else format_utc(self.offline_lock_at)
            ),
            "support_phone": self.support_phone,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> Command:
        """Parse a decoded payload; ValidationFailed names the first bad field."""
        data = _check_keys(payload, _COMMAND_KEYS, "command")
        _check_version(data["v"])
        for field in ("command_id", "device_id", "action", "nonce"):
            if not isinstance(data[field], str):
                raise ValidationFailed(field, "string", f"{field} must be a string")
        deadline = data["offline_lock_at"]
        return cls(
            command_id=data["command_id"],
            device_id=data["device_id"],
            action=data["action"],
            nonce=data["nonce"],
            issued_at=parse_utc(data["issued_at"], field="issued_at"),
            expires_at=parse_utc(data["expires_at"], field="expires_at"),
            message=data["message"],
            offline_lock_at=None
            if deadline is None
            else parse_utc(deadline, field="offline_lock_at"),
            support_phone=data["support_phone"],
            v=data["v"],
        )


def new_command(
    *,
    device_id: str,
    action: str,
    now: datetime,
    ttl: timedelta,
    nonce: str | None = None,
    message: str | None = None,
    offline_lock_at: datetime | None = None,
    support_phone: str | None = None,
    command_id: str | None = None,
) -> Command:
    """A command issued at `now` (to the second) that expires `ttl` later."""
    _require_aware(now, "now")
    if ttl < timedelta(seconds=1):
        raise ValidationFailed("ttl", "positive", "ttl must be at least one second")
    if offline_lock_at is not None:
        _require_aware(offline_lock_at, "offline_lock_at")
        offline_lock_at = offline_lock_at.astimezone(UTC).replace(microsecond=0)
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    return Command(
        command_id=command_id if command_id is not None else str(uuid.uuid4()),
        device_id=device_id,
        action=action,
        nonce=nonce if nonce is not None else new_nonce(),
        issued_at=issued_at,
        expires_at=(issued_at + ttl).replace(microsecond=0),
        message=message,
        offline_lock_at=offline_lock_at,
        support_phone=support_phone,
    )


# -- envelopes ---------------------------------------------------------------------------


def _seal(
    private_key: Ed25519PrivateKey, payload: Mapping[str, Any], key_id: str
) -> dict[str, str]:
    _check_id(key_id, "key_id")
    data = canonical_json(payload)
    return {
        "payload": b64url_encode(data),
        "signature": b64url_encode(private_key.sign(data)),
        "key_id": key_id,
    }


def _open(public_key: Ed25519PublicKey, envelope: Any) -> dict[str, Any]:
    """Check the signature over the payload bytes, then parse them and check the version."""
    if not isinstance(envelope, Mapping) or set(envelope) != _ENVELOPE_KEYS:
        raise CommandRejected("malformed", "an envelope has exactly payload, signature, key_id")
    payload_text, signature_text = envelope["payload"], envelope["signature"]
    if not isinstance(envelope["key_id"], str) or not isinstance(payload_text, str):
        raise CommandRejected("malformed", "payload and key_id must be strings")
    if len(payload_text) > MAX_PAYLOAD_CHARS:
        raise CommandRejected("malformed", "payload is too large")
    try:
        data = b64url_decode(payload_text, field="payload")
        signature = b64url_decode(signature_text, field="signature")
    except ValidationFailed as exc:
        raise CommandRejected("malformed", exc.detail) from exc
    if len(signature) != 64:
        raise CommandRejected("malformed", "an Ed25519 signature is 64 bytes")
    try:
        public_key.verify(signature, data)
    except InvalidSignature as exc:
        raise CommandRejected("bad-signature", "the signature does not match the payload") from exc
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandRejected("malformed", "payload is not UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise CommandRejected("malformed", "payload is not a JSON object")
    try:
        _check_version(obj.get("v"))
    except ValidationFailed as exc:
        reason = "unsupported-version" if exc.rule == "unsupported-version" else "malformed"
        raise CommandRejected(reason, exc.detail) from exc
    return obj


def _check_freshness(
    *,
    sent: datetime,
    valid_until: datetime,
    now: datetime,
    nonce: str,
    seen_nonces: Container[str],
    clock_skew: timedelta,
) -> None:
    if now < sent - clock_skew:
        raise CommandRejected("not-yet-valid", f"issued {format_utc(sent)}, beyond clock skew")
    if now >= valid_until:
        raise CommandRejected("expired", f"valid until {format_utc(valid_until)}")
    if nonce in seen_nonces:
        raise CommandRejected("replayed", "this nonce was seen before")


def sign_command(
    private_key: Ed25519PrivateKey, command: Command, *, key_id: str
) -> dict[str, str]:
    """The envelope the server sends: the command's canonical payload signed by the server."""
    return _seal(private_key, command.to_payload(), key_id)


def verify_command(
    public_key: Ed25519PublicKey,
    envelope: Any,
    *,
    device_id: str,
    now: datetime,
    seen_nonces: Container[str],
    clock_skew: timedelta = timedelta(minutes=5),
) -> Command:
    """The command, if the envelope is authentic, for this device, current and not replayed.

    Valid while ``issued_at - clock_skew <= now < expires_at + clock_skew``. The caller records
    ``command.nonce`` once it accepts the command (this function does not mutate anything).
    """
    _require_aware(now, "now")
    obj = _open(public_key, envelope)
    try:
        command = Command.from_payload(obj)
    except ValidationFailed as exc:
        raise CommandRejected("malformed", exc.detail) from exc
    if command.device_id != device_id:
        raise CommandRejected("wrong-device", "the command is for another device")
    _check_freshness(
        sent=command.issued_at,
        valid_until=command.expires_at + clock_skew,
        now=now,
        nonce=command.nonce,
        seen_nonces=seen_nonces,
        clock_skew=clock_skew,
    )
    return command


# -- check-ins ---------------------------------------------------------------------------


def _check_ack(ack: Any) -> dict[str, Any]:
    data = _check_keys(ack, _ACK_KEYS, "acks")
    if data["result"] not in ACK_RESULTS:
        raise ValidationFailed("acks", "one-of", "an ack's result is done or rejected")
    return {
        "command_id": _check_id(data["command_id"], "acks"),
        "result": data["result"],
        "reason": _check_text(data["reason"], "acks", REMINDER_MESSAGE_MAX),
    }


def validate_check_in(payload: Any) -> dict[str, Any]:
    """A clean copy of a check-in payload; ValidationFailed names the first bad field."""
    data = _check_keys(payload, _CHECK_IN_KEYS, "check_in")
    _check_version(data["v"])
    parse_utc(data["sent_at"], field="sent_at")
    if data["state"] not in DEVICE_STATES:
        raise ValidationFailed("state", "one-of", f"state must be one of {DEVICE_STATES}")
    imeis, acks, sim = data["imeis"], data["acks"], data["sim_mcc_mnc"]
    if not isinstance(imeis, list) or len(imeis) > MAX_IMEIS:
        raise ValidationFailed("imeis", "list", f"imeis must be a list of at most {MAX_IMEIS}")
    if not all(isinstance(imei, str) and _IMEI.fullmatch(imei) for imei in imeis):
        raise ValidationFailed("imeis", "imei", "each IMEI is 14-16 digits")
    if sim is not None and (not isinstance(sim, str) or not _MCC_MNC.fullmatch(sim)):
        raise ValidationFailed("sim_mcc_mnc", "mcc-mnc", "sim_mcc_mnc is 5-6 digits or null")
    if not isinstance(acks, list) or len(acks) > MAX_ACKS:
        raise ValidationFailed("acks", "list", f"acks must be a list of at most {MAX_ACKS}")
    return {
        "v": VERSION,
        "device_id": _check_id(data["device_id"], "device_id"),
        "sent_at": data["sent_at"],
        "nonce": _check_nonce(data["nonce"]),
        "state": data["state"],
        "imeis": list(imeis),
        "sim_mcc_mnc": sim,
        "rooted": _check_flag(data["rooted"], "rooted"),
        "tampered": _check_flag(data["tampered"], "tampered"),
        "acks": [_check_ack(ack) for ack in acks],
    }


def new_check_in(
    *,
    device_id: str,
    now: datetime,
    state: str,
    imeis: Iterable[str],
    sim_mcc_mnc: str | None = None,
    rooted: bool = False,
    tampered: bool = False,
    acks: Iterable[Mapping[str, Any]] = (),
    nonce: str | None = None,
) -> dict[str, Any]:
    """A validated check-in payload sent at `now`."""
    return validate_check_in(
        {
            "v": VERSION,
            "device_id": device_id,
            "sent_at": format_utc(now, field="now"),
            "nonce": nonce if nonce is not None else new_nonce(),
            "state": state,
            "imeis": list(imeis),
            "sim_mcc_mnc": sim_mcc_mnc,
            "rooted": rooted,
            "tampered": tampered,
            "acks": [dict(ack) for ack in acks],
        }
    )


def sign_check_in(private_key: Ed25519PrivateKey, payload: Mapping[str, Any]) -> dict[str, str]:
    """The envelope a device sends: its payload signed by its key; key_id is the device id."""
    clean = validate_check_in(payload)
    return _seal(private_key, clean, clean["device_id"])


def verify_check_in(
    public_key: Ed25519PublicKey,
    envelope: Any,
    *,
    device_id: str,
    now: datetime,
    seen_nonces: Container[str],
    max_age: timedelta = timedelta(minutes=10),
    clock_skew: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    """The check-in payload, if authentic, from this device, recent and not replayed.

    Accepted while ``sent_at - clock_skew <= now < sent_at + max_age``. The caller records
    ``payload["nonce"]`` once it accepts the check-in.
    """
    _require_aware(now, "now")
    obj = _open(public_key, envelope)
    try:
        payload = validate_check_in(obj)
    except ValidationFailed as exc:
        raise CommandRejected("malformed", exc.detail) from exc
    if payload["device_id"] != device_id:
        raise CommandRejected("wrong-device", "the check-in is from another device")
    sent_at = parse_utc(payload["sent_at"], field="sent_at")
    _check_freshness(
        sent=sent_at,
        valid_until=sent_at + max_age,
        now=now,
        nonce=payload["nonce"],
        seen_nonces=seen_nonces,
        clock_skew=clock_skew,
    )
    return payload
