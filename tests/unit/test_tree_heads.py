"""Signed tree heads, the log's signing key and the leaf format (trust.signing, pure).

Expected bytes are written out by hand from the documented formats; signatures are checked
with `cryptography` directly and with the RFC 8032 test key, not only with our verifier.
"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mobilend.core.errors import ValidationFailed
from mobilend.trust import signing
from mobilend.trust.signing import SignedTreeHead

# RFC 8032 section 7.1, TEST 1.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_EMPTY_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701"
    "cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
ROOT = bytes(range(32))
ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 00 01 02 -> AAEC, ..., 1e 1f -> Hh8=
# 2025-01-01T00:00:00Z is 1735689600 s; + 14 days (1209600 s) + 4 h (14400 s) = 1736913600 s.
T0 = datetime(2025, 1, 15, 12, tzinfo=timezone(timedelta(hours=8)))  # = 2025-01-15T04:00:00Z
T0_MS = 1_736_913_600_000


def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RFC_SECRET)


def rfc_key_id() -> str:
    return hashlib.sha256(RFC_PUBLIC).hexdigest()[:16]


def test_the_rfc_8032_key_is_the_one_we_think() -> None:
    key = rfc_key()
    assert signing.raw_public_key(key) == RFC_PUBLIC
    assert key.sign(b"") == RFC_EMPTY_SIGNATURE
    assert signing.key_id_of(key) == rfc_key_id() == signing.key_id_of(key.public_key())


def test_timestamp_is_milliseconds_since_the_epoch_in_utc() -> None:
    assert signing.timestamp_ms(T0) == T0_MS
    assert signing.timestamp_ms(T0 + timedelta(microseconds=1999)) == T0_MS + 1  # truncated
    with pytest.raises(ValidationFailed) as caught:
        signing.timestamp_ms(datetime(2025, 1, 15))
    assert caught.value.field == "now"


def test_the_signed_bytes_are_the_canonical_json_of_four_fields() -> None:
    expected = (
        '{"key_id":"0123456789abcdef","root_hash":"' + ROOT_B64 + '","timestamp":1736913600000,'
        '"tree_size":7}'
    ).encode()
    assert signing.signed_bytes(7, ROOT, T0_MS, "0123456789abcdef") == expected


def test_a_signed_tree_head_verifies_with_cryptography_directly() -> None:
    key = rfc_key()
    sth = signing.sign_tree_head(key, tree_size=7, root_hash=ROOT, timestamp=T0_MS)
    assert (sth.tree_size, sth.root_hash, sth.timestamp, sth.key_id) == (
        7,
        ROOT,
        T0_MS,
        rfc_key_id(),
    )
    message = (
        '{"key_id":"' + rfc_key_id() + '","root_hash":"' + ROOT_B64 + '",'
        '"timestamp":1736913600000,"tree_size":7}'
    ).encode()
    key.public_key().verify(sth.signature, message)  # raises if not
    assert signing.verify_tree_head(sth, key.public_key())
    assert sth.to_json() == {
        "tree_size": 7,
        "root_hash": ROOT_B64,
        "timestamp": T0_MS,
        "key_id": rfc_key_id(),
        "signature": signing.b64(sth.signature),
    }
    assert SignedTreeHead.from_json(json.loads(json.dumps(sth.to_json()))) == sth


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 8},
        {"tree_size": 6},
        {"root_hash": bytes(32)},
        {"timestamp": T0_MS + 1},
        {"key_id": "0000000000000000"},
    ],
)
def test_a_tampered_tree_head_fails(change: dict[str, object]) -> None:
    key = rfc_key()
    sth = signing.sign_tree_head(key, tree_size=7, root_hash=ROOT, timestamp=T0_MS)
    fields = {
        "tree_size": sth.tree_size,
        "root_hash": sth.root_hash,
        "timestamp": sth.timestamp,
        "key_id": sth.key_id,
        "signature": sth.signature,
        **change,
    }
    assert not signing.verify_tree_head(SignedTreeHead(**fields), key.public_key())  # type: ignore[arg-type]


def test_a_flipped_signature_bit_fails() -> None:
    key = rfc_key()
    sth = signing.sign_tree_head(key, tree_size=7, root_hash=ROOT, timestamp=T0_MS)
    bad = bytes([sth.signature[0] ^ 1]) + sth.signature[1:]
    forged = SignedTreeHead(sth.tree_size, sth.root_hash, sth.timestamp, sth.key_id, bad)
    assert not signing.verify_tree_head(forged, key.public_key())


def test_a_head_signed_by_another_key_fails_even_under_our_key_id() -> None:
    ours, theirs = rfc_key(), Ed25519PrivateKey.generate()
    sth = signing.sign_tree_head(theirs, tree_size=7, root_hash=ROOT, timestamp=T0_MS)
    assert not signing.verify_tree_head(sth, ours.public_key())  # names the other key
    message = signing.signed_bytes(7, ROOT, T0_MS, rfc_key_id())
    spoofed = SignedTreeHead(7, ROOT, T0_MS, rfc_key_id(), theirs.sign(message))
    assert not signing.verify_tree_head(spoofed, ours.public_key())


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "sth"),
        ({"tree_size": None}, "sth.tree_size"),
        ({"tree_size": -1}, "sth.tree_size"),
        ({"tree_size": True}, "sth.tree_size"),
        ({"timestamp": "now"}, "sth.timestamp"),
        ({"root_hash": "AAEC"}, "sth.root_hash"),
        ({"root_hash": "not base64!"}, "sth.root_hash"),
        ({"signature": ROOT_B64}, "sth.signature"),
        ({"key_id": "XYZ"}, "sth.key_id"),
    ],
)
def test_reading_a_malformed_tree_head_names_the_field(obj: object, field: str) -> None:
    good = {
        "tree_size": 7,
        "root_hash": ROOT_B64,
        "timestamp": T0_MS,
        "key_id": rfc_key_id(),
        "signature": signing.b64(bytes(64)),
    }
    body = obj
    if isinstance(obj, dict):  # None drops the field
        merged = {**good, **obj}
        body = {k: v for k, v in merged.items() if v is not None}
    with pytest.raises(ValidationFailed) as caught:
        SignedTreeHead.from_json(body)
    assert caught.value.field == field


# -- the key file ------------------------------------------------------------------------


def test_the_key_is_made_once_with_mode_0600_and_reloaded(tmp_path: Path) -> None:
    key = signing.log_key(tmp_path)
    path = tmp_path / "log-signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.log_key(tmp_path) is key
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    raw = loaded.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert raw == signing.raw_public_key(key)
    assert signing.key_id_of(key) == hashlib.sha256(raw).hexdigest()[:16]
    assert [p.name for p in tmp_path.iterdir()] == ["log-signing-key.pem"]  # no temp file left


def test_processes_racing_to_make_the_key_end_with_one(tmp_path: Path) -> None:
    keys: list[bytes] = []

    def make() -> None:  # the module cache is per path, so go to the file directly
        key = signing._load_or_create(tmp_path / "k.pem", create=True)
        keys.append(signing.raw_public_key(key))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_a_configured_key_path_is_used_and_never_created(tmp_path: Path) -> None:
    key = rfc_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    configured = tmp_path / "hsm-export.pem"
    configured.write_bytes(pem)
    assert signing.key_id_of(signing.log_key(tmp_path, key_path=configured)) == rfc_key_id()
    assert not (tmp_path / "log-signing-key.pem").exists()
    with pytest.raises(ValidationFailed) as caught:
        signing.log_key(tmp_path, key_path=tmp_path / "missing.pem")
    assert caught.value.field == "key_path"


def test_the_public_key_reads_back_from_every_published_form() -> None:
    key = rfc_key()
    published = signing.public_key_json(key)
    # base64 of RFC_PUBLIC (Python's base64 module): 0xd75a98 -> "11qY", ...
    assert published["public_key"] == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    assert published["key_id"] == rfc_key_id()
    assert published["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    for text in (published["public_key"], published["pem"], json.dumps(published)):
        assert signing.raw_public_key(signing.load_public_key(text)) == RFC_PUBLIC
    for bad in ("AAEC", "{}", "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"):
        with pytest.raises(ValidationFailed) as caught:
            signing.load_public_key(bad)
        assert caught.value.field == "public_key"


# -- leaves ------------------------------------------------------------------------------


def test_the_leaf_input_is_canonical_json_written_out_by_hand() -> None:
    digest = hashlib.sha256(b"journal entry 42").hexdigest()
    data = signing.leaf_input(
        kind="repayment",
        refs={"loan_id": 17, "entry_id": 42, "repayment_id": "R-2025.01:7"},
        digest=bytes.fromhex(digest),
        at=T0 + timedelta(microseconds=123_999),
    )
    expected = (
        '{"at":"2025-01-15T04:00:00.123Z","digest":"' + digest + '","kind":"repayment",'
        '"refs":{"entry_id":42,"loan_id":17,"repayment_id":"R-2025.01:7"},"v":1}'
    ).encode()
    assert data == expected
    leaf = signing.parse_leaf(data)
    assert leaf.to_json() == {
        "kind": "repayment",
        "refs": {"entry_id": 42, "loan_id": 17, "repayment_id": "R-2025.01:7"},
        "digest": digest,
        "at": "2025-01-15T04:00:00.123Z",
    }
    upper = signing.leaf_input(kind="repayment", refs={"loan_id": 17}, digest=digest.upper(), at=T0)
    assert digest.encode() in upper  # hex is stored in lower case


@pytest.mark.parametrize(
    ("refs", "field"),
    [
        ({"name": "张三"}, "refs.name"),  # personal data: not an id name, nor an id
        ({"phone": "13800138000"}, "refs.phone"),
        ({"borrower_id": "张三"}, "refs.borrower_id"),
        ({"customer_id": "+86 138 0013 8000"}, "refs.customer_id"),
        ({"contact_id": "someone@example.com"}, "refs.contact_id"),
        ({"id": 1}, "refs.id"),
        ({"loan_id": -1}, "refs.loan_id"),
        ({"loan_id": 2**53}, "refs.loan_id"),
        ({"loan_id": True}, "refs.loan_id"),
        ({"loan_id": 1.5}, "refs.loan_id"),
        ({"loan_id": "x" * 65}, "refs.loan_id"),
        ({"loan_id": ""}, "refs.loan_id"),
        ({"Loan_id": 1}, "refs.Loan_id"),
        ({"loan id": 1}, "refs.loan id"),
        ({}, "refs"),
        ({f"k{i}_id": i for i in range(17)}, "refs"),
    ],
)
def test_refs_hold_ids_only(refs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        signing.leaf_input(kind="decision", refs=refs, digest=bytes(32), at=T0)
    assert caught.value.field == field


def test_kind_digest_and_time_are_checked() -> None:
    good = {"kind": "decision", "refs": {"application_id": 1}, "digest": bytes(32), "at": T0}
    for change, field in (
        ({"kind": "lunch"}, "kind"),
        ({"digest": bytes(31)}, "digest"),
        ({"digest": "ab" * 31}, "digest"),
        ({"digest": "zz" * 32}, "digest"),
        ({"at": datetime(2025, 1, 15)}, "at"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            signing.leaf_input(**{**good, **change})  # type: ignore[arg-type]
        assert caught.value.field == field


@pytest.mark.parametrize(
    "text",
    [
        b'{"at":"2025-01-15T04:00:00.000Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"refs":{"application_id":1},"v":1} ',  # trailing space
        b'{"v":1,"at":"2025-01-15T04:00:00.000Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"refs":{"application_id":1}}',  # keys not sorted
        b'{"at":"2025-01-15T04:00:00.000Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"refs":{"application_id":1},"v":2}',  # another version
        b'{"at":"2025-01-15T04:00:00Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"refs":{"application_id":1},"v":1}',  # no milliseconds
        b'{"at":"2025-01-15T04:00:00.000Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"name":"x","refs":{"application_id":1},"v":1}',  # extra field
        b"not json",
    ],
)
def test_only_canonical_v1_leaves_parse(text: bytes) -> None:
    with pytest.raises(ValidationFailed):
        signing.parse_leaf(text)


def test_the_canonical_leaf_parses() -> None:
    text = (
        b'{"at":"2025-01-15T04:00:00.000Z","digest":"' + b"0" * 64 + b'","kind":"decision",'
        b'"refs":{"application_id":1},"v":1}'
    )
    assert signing.parse_leaf(text).refs == {"application_id": 1}
    assert (
        signing.leaf_input(
            kind="decision", refs={"application_id": 1}, digest=bytes(32), at=T0.astimezone(UTC)
        )
        == text
    )


def test_signing_needs_a_32_byte_root() -> None:
    with pytest.raises(ValidationFailed):
        signing.sign_tree_head(rfc_key(), tree_size=1, root_hash=b"short", timestamp=0)
