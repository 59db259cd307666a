"""Signed device-lock commands and check-ins: the wire bytes, and every way to be rejected.

Expected bytes and times are written out by hand from the wire format in docs/device-lock.md.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mobilend.collateral.commands import (
    Command,
    CommandRejected,
    b64url_decode,
    b64url_encode,
    canonical_json,
    format_utc,
    generate_keypair,
    load_public_key,
    new_check_in,
    new_command,
    parse_utc,
    private_key_from_pem,
    private_key_to_pem,
    public_key_b64,
    sign_check_in,
    sign_command,
    verify_check_in,
    verify_command,
)
from mobilend.core.errors import MobilendError, ValidationFailed

T0 = datetime(2026, 3, 10, 8, 0, 0, tzinfo=UTC)
TTL = timedelta(hours=72)
NONCE = "A" * 22  # 16 zero bytes: 128 bits -> 21 full sextets + 2 bits -> 22 characters
NONCE_2 = "AQ" + "A" * 20  # 000000 010000 ... -> first byte 0x01, the other 15 zero
SERVER_KEY, SERVER_PUB = generate_keypair()
OTHER_KEY, _ = generate_keypair()
DEVICE_KEY, DEVICE_PUB = generate_keypair()


def pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def lock_command(**overrides: Any) -> Command:
    args: dict[str, Any] = {
        "device_id": "dev-1",
        "action": "lock",
        "now": T0,
        "ttl": TTL,
        "nonce": NONCE,
        "message": "Pay now",
        "command_id": "cmd-1",
    }
    args.update(overrides)
    return new_command(**args)


def raw_envelope(key: Ed25519PrivateKey, data: bytes, key_id: str = "srv-1") -> dict[str, str]:
    """Sign arbitrary bytes, bypassing every check in the module under test."""
    return {
        "payload": base64.urlsafe_b64encode(data).decode().rstrip("="),
        "signature": base64.urlsafe_b64encode(key.sign(data)).decode().rstrip("="),
        "key_id": key_id,
    }


def verify(envelope: Any, *, now: datetime = T0, seen: frozenset[str] = frozenset()) -> Command:
    return verify_command(
        load_public_key(SERVER_PUB), envelope, device_id="dev-1", now=now, seen_nonces=seen
    )


def rejected(envelope: Any, **kwargs: Any) -> str:
    with pytest.raises(CommandRejected) as info:
        verify(envelope, **kwargs)
    return info.value.reason


# -- encodings and keys ------------------------------------------------------------------


def test_the_signed_bytes_are_the_canonical_payload() -> None:
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    expected = (
        b'{"action":"lock","command_id":"cmd-1","device_id":"dev-1",'
        b'"expires_at":"2026-03-13T08:00:00Z","issued_at":"2026-03-10T08:00:00Z",'
        b'"message":"Pay now","nonce":"AAAAAAAAAAAAAAAAAAAAAA","offline_lock_at":null,'
        b'"support_phone":null,"v":1}'
    )
    assert set(envelope) == {"payload", "signature", "key_id"}
    assert envelope["key_id"] == "srv-1"
    assert "=" not in envelope["payload"] and "=" not in envelope["signature"]
    data = base64.urlsafe_b64decode(pad(envelope["payload"]))
    assert data == expected
    signature = base64.urlsafe_b64decode(pad(envelope["signature"]))
    assert len(signature) == 64 and len(envelope["signature"]) == 86  # ceil(512 / 6)
    SERVER_KEY.public_key().verify(signature, data)  # raises if it does not hold


def test_canonical_json_keeps_non_ascii_text() -> None:
    assert canonical_json({"b": "逾期", "a": [1, None]}) == '{"a":[1,null],"b":"逾期"}'.encode()


def test_times_are_utc_whole_seconds() -> None:
    shanghai = timezone(timedelta(hours=8))
    command = lock_command(now=datetime(2026, 3, 10, 16, 0, 0, 750_000, tzinfo=shanghai))
    assert command.to_payload()["issued_at"] == "2026-03-10T08:00:00Z"
    assert command.to_payload()["expires_at"] == "2026-03-13T08:00:00Z"
    assert parse_utc("2026-03-10T08:00:00Z", field="t") == T0
    assert format_utc(T0) == "2026-03-10T08:00:00Z"
    for text in ("2026-03-10T08:00:00+00:00", "2026-03-10 08:00:00Z", "2026-02-30T00:00:00Z"):
        with pytest.raises(ValidationFailed) as info:
            parse_utc(text, field="sent_at")
        assert info.value.field == "sent_at"
    with pytest.raises(ValidationFailed) as naive:
        lock_command(now=datetime(2026, 3, 10, 8, 0))
    assert (naive.value.field, naive.value.rule) == ("now", "timezone-aware")


def test_base64url_is_strict() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"  # 111110 111111 1111(00): '-', '_', '8'
    assert b64url_decode("-_8", field="x") == b"\xfb\xff"
    assert b64url_decode("AA", field="x") == b"\x00"
    for bad in ("AB", "+/8", "AA==", "A", "AA AA"):  # stray bits, std alphabet, padding, length
        with pytest.raises(ValidationFailed):
            b64url_decode(bad, field="x")


def test_public_keys_are_43_characters_and_load_back() -> None:
    assert len(SERVER_PUB) == 43  # 32 bytes = 256 bits -> 42 sextets + 4 bits -> 43
    assert public_key_b64(SERVER_KEY) == SERVER_PUB
    raw = SERVER_KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert (
        load_public_key(SERVER_PUB).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        == raw
    )


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "A" * 42 + "=", "+" * 43, SERVER_PUB + "AA", 7],
    ids=["empty", "short", "padded", "alphabet", "too-long", "not-text"],
)
def test_bad_public_keys_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_public_key(bad)
    assert (info.value.field, info.value.rule) == ("public_key", "ed25519-format")


def test_private_key_pem_round_trip_with_and_without_password() -> None:
    plain = private_key_to_pem(DEVICE_KEY)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key_b64(private_key_from_pem(plain)) == DEVICE_PUB
    locked = private_key_to_pem(DEVICE_KEY, password=b"s3cret")
    assert locked.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert public_key_b64(private_key_from_pem(locked, password=b"s3cret")) == DEVICE_PUB
    with pytest.raises(ValidationFailed):
        private_key_from_pem(locked, password=b"wrong")
    with pytest.raises(ValidationFailed):
        private_key_from_pem(b"not a pem")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValidationFailed) as info:
        private_key_from_pem(ec_pem)
    assert info.value.rule == "ed25519-pem"


# -- building commands -------------------------------------------------------------------


def test_new_command_defaults_are_fresh() -> None:
    one = new_command(device_id="dev-1", action="unlock", now=T0, ttl=TTL)
    two = new_command(device_id="dev-1", action="unlock", now=T0, ttl=TTL)
    assert one.nonce != two.nonce and one.command_id != two.command_id
    assert len(b64url_decode(one.nonce, field="nonce")) == 16


def test_message_limits_follow_knox_guard() -> None:
    assert lock_command(message="x" * 350).message == "x" * 350
    assert lock_command(action="reminder", message="y" * 200).message == "y" * 200
    cases = [
        {"message": "x" * 351},
        {"action": "reminder", "message": "y" * 201},
        {"action": "unlock", "message": "z" * 201},
    ]
    for overrides in cases:
        with pytest.raises(ValidationFailed) as info:
            lock_command(**overrides)
        assert (info.value.field, info.value.rule) == ("message", "max-length")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"action": "wipe"}, "action"),
        ({"action": "reminder", "message": None}, "message"),
        ({"message": "   "}, "message"),
        ({"action": "set_offline_deadline", "message": None}, "offline_lock_at"),
        ({"offline_lock_at": T0 + timedelta(days=7)}, "offline_lock_at"),
        ({"nonce": "A" * 20}, "nonce"),  # 20 characters = 120 bits = 15 bytes, under 16
        ({"device_id": "dev 1"}, "device_id"),
        ({"command_id": ""}, "command_id"),
        ({"ttl": timedelta(0)}, "ttl"),
        ({"support_phone": "call us"}, "support_phone"),
    ],
)
def test_bad_commands_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        lock_command(**overrides)
    assert info.value.field == field


def test_set_offline_deadline_carries_the_deadline() -> None:
    command = lock_command(
        action="set_offline_deadline", message=None, offline_lock_at=T0 + timedelta(days=7)
    )
    envelope = sign_command(SERVER_KEY, command, key_id="srv-1")
    assert verify(envelope).offline_lock_at == datetime(2026, 3, 17, 8, 0, tzinfo=UTC)


# -- verifying commands ------------------------------------------------------------------


def test_round_trip() -> None:
    command = lock_command(support_phone="+254 700 000000")
    assert verify(sign_command(SERVER_KEY, command, key_id="srv-1")) == command


def test_command_rejected_is_a_400_problem() -> None:
    error = CommandRejected("replayed")
    assert isinstance(error, MobilendError)
    assert (error.status, error.type, error.field, error.rule) == (
        400,
        "command-rejected",
        "envelope",
        "replayed",
    )
    with pytest.raises(ValueError):
        CommandRejected("because")


def test_forged_by_another_key() -> None:
    assert rejected(sign_command(OTHER_KEY, lock_command(), key_id="srv-1")) == "bad-signature"


def test_one_tampered_payload_byte() -> None:
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    data = base64.urlsafe_b64decode(pad(envelope["payload"]))
    forged = data.replace(b'"lock"', b'"lick"')
    assert len(forged) == len(data) and forged != data
    envelope["payload"] = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    assert rejected(envelope) == "bad-signature"


def test_one_tampered_signature_byte() -> None:
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    signature = bytearray(base64.urlsafe_b64decode(pad(envelope["signature"])))
    signature[10] ^= 0x01
    envelope["signature"] = base64.urlsafe_b64encode(bytes(signature)).decode().rstrip("=")
    assert rejected(envelope) == "bad-signature"


def test_wrong_device() -> None:
    envelope = sign_command(SERVER_KEY, lock_command(device_id="dev-2"), key_id="srv-1")
    assert rejected(envelope) == "wrong-device"


def test_expiry_with_five_minutes_of_skew() -> None:
    # Issued 2026-03-10 08:00, ttl 72 h -> expires 2026-03-13 08:00; skew 5 min -> 08:05.
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    assert verify(envelope, now=datetime(2026, 3, 13, 8, 4, 59, tzinfo=UTC)).action == "lock"
    assert rejected(envelope, now=datetime(2026, 3, 13, 8, 5, 0, tzinfo=UTC)) == "expired"


def test_not_yet_valid_beyond_the_skew() -> None:
    # Issued 08:00; a device clock may run up to 5 minutes behind: 07:55:00 is the earliest.
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    assert verify(envelope, now=datetime(2026, 3, 10, 7, 55, 0, tzinfo=UTC)).action == "lock"
    early = datetime(2026, 3, 10, 7, 54, 59, tzinfo=UTC)
    assert rejected(envelope, now=early) == "not-yet-valid"


def test_replayed_nonce() -> None:
    envelope = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    assert rejected(envelope, seen=frozenset({NONCE})) == "replayed"
    assert verify(envelope, seen=frozenset({NONCE_2})).nonce == NONCE


def test_malformed_envelopes() -> None:
    good = sign_command(SERVER_KEY, lock_command(), key_id="srv-1")
    cases: list[Any] = [
        "not an object",
        {"payload": good["payload"], "signature": good["signature"]},
        {**good, "extra": "x"},
        {**good, "payload": "!!!"},
        {**good, "signature": "%%%"},
        {**good, "signature": good["signature"][:43]},  # 32 bytes, not 64
        {**good, "key_id": 5},
        raw_envelope(SERVER_KEY, b"not json"),
        raw_envelope(SERVER_KEY, b"\xff\xfe"),
        raw_envelope(SERVER_KEY, b"[1, 2]"),
        raw_envelope(SERVER_KEY, b'{"v": 1}'),
    ]
    for envelope in cases:
        assert rejected(envelope) == "malformed", envelope


def test_signed_but_invalid_fields_are_malformed() -> None:
    payload = lock_command().to_payload()
    for field, value in [
        ("message", "x" * 351),
        ("action", "wipe"),
        ("issued_at", "2026-03-10T08:00:00+00:00"),
        ("v", "1"),
        ("v", True),
        ("nonce", 12345),
    ]:
        envelope = raw_envelope(SERVER_KEY, canonical_json({**payload, field: value}))
        assert rejected(envelope) == "malformed", field


def test_unsupported_version() -> None:
    payload = {**lock_command().to_payload(), "v": 2}
    assert rejected(raw_envelope(SERVER_KEY, canonical_json(payload))) == "unsupported-version"


def test_signature_is_checked_before_the_payload_is_read() -> None:
    # Garbage signed by someone else is a forgery, not a parsing problem.
    assert rejected(raw_envelope(OTHER_KEY, b"not json")) == "bad-signature"


# -- check-ins ---------------------------------------------------------------------------

SENT = datetime(2026, 3, 10, 10, 0, 0, tzinfo=UTC)


def check_in(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "device_id": "dev-1",
        "now": SENT,
        "state": "locked",
        "imeis": ["490154203237518"],
        "sim_mcc_mnc": "63902",
        "rooted": False,
        "tampered": True,
        "acks": [{"command_id": "cmd-1", "result": "done", "reason": None}],
        "nonce": NONCE_2,
    }
    args.update(overrides)
    return new_check_in(**args)


def verify_in(envelope: Any, *, now: datetime = SENT, seen: frozenset[str] = frozenset()) -> Any:
    return verify_check_in(
        load_public_key(DEVICE_PUB), envelope, device_id="dev-1", now=now, seen_nonces=seen
    )


def check_in_rejected(envelope: Any, **kwargs: Any) -> str:
    with pytest.raises(CommandRejected) as info:
        verify_in(envelope, **kwargs)
    return info.value.reason


def test_check_in_round_trip() -> None:
    payload = check_in()
    envelope = sign_check_in(DEVICE_KEY, payload)
    assert envelope["key_id"] == "dev-1"
    assert json.loads(base64.urlsafe_b64decode(pad(envelope["payload"]))) == {
        "v": 1,
        "device_id": "dev-1",
        "sent_at": "2026-03-10T10:00:00Z",
        "nonce": NONCE_2,
        "state": "locked",
        "imeis": ["490154203237518"],
        "sim_mcc_mnc": "63902",
        "rooted": False,
        "tampered": True,
        "acks": [{"command_id": "cmd-1", "result": "done", "reason": None}],
    }
    assert verify_in(envelope) == payload


def test_check_in_age_and_skew() -> None:
    # Sent 10:00, max age 10 minutes: accepted up to 10:09:59; 5 minutes of skew ahead.
    envelope = sign_check_in(DEVICE_KEY, check_in())
    assert verify_in(envelope, now=datetime(2026, 3, 10, 10, 9, 59, tzinfo=UTC))["state"]
    assert check_in_rejected(envelope, now=datetime(2026, 3, 10, 10, 10, 0, tzinfo=UTC)) == (
        "expired"
    )
    assert verify_in(envelope, now=datetime(2026, 3, 10, 9, 55, 0, tzinfo=UTC))["state"]
    early = datetime(2026, 3, 10, 9, 54, 59, tzinfo=UTC)
    assert check_in_rejected(envelope, now=early) == "not-yet-valid"


def test_check_in_rejections() -> None:
    envelope = sign_check_in(DEVICE_KEY, check_in())
    assert check_in_rejected(envelope, seen=frozenset({NONCE_2})) == "replayed"
    assert check_in_rejected(sign_check_in(OTHER_KEY, check_in())) == "bad-signature"
    other = sign_check_in(DEVICE_KEY, check_in(device_id="dev-2"))
    assert check_in_rejected(other) == "wrong-device"
    bad_flag = {**check_in(), "rooted": "no"}
    assert check_in_rejected(raw_envelope(DEVICE_KEY, canonical_json(bad_flag))) == "malformed"
    future = {**check_in(), "v": 3}
    assert check_in_rejected(raw_envelope(DEVICE_KEY, canonical_json(future))) == (
        "unsupported-version"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"state": "bricked"}, "state"),
        ({"imeis": ["12345"]}, "imeis"),
        ({"imeis": ["490154203237518"] * 5}, "imeis"),
        ({"sim_mcc_mnc": "639-02"}, "sim_mcc_mnc"),
        ({"rooted": 0}, "rooted"),
        ({"acks": [{"command_id": "cmd-1", "result": "ok", "reason": None}]}, "acks"),
        ({"acks": [{"command_id": "cmd-1", "result": "done"}]}, "acks"),
        ({"nonce": "short"}, "nonce"),
    ],
)
def test_bad_check_ins_are_not_signed(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        sign_check_in(DEVICE_KEY, {**check_in(), **overrides})
    assert info.value.field == field
