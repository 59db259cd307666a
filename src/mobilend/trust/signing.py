"""What the transparency log hashes and signs: leaf inputs and signed tree heads (pure).

- **Leaf input** (`leaf_input`, `parse_leaf`): the canonical JSON (sorted keys, no spaces,
  UTF-8) of ``{"at", "digest", "kind", "refs", "v": 1}``. ``refs`` hold ids only and ``digest``
  the SHA-256 of the business record, so a leaf never carries personal data; every value is
  checked against a narrow pattern, which also makes the bytes plain ASCII.
- **Signed tree head** (`SignedTreeHead`, `sign_tree_head`, `verify_tree_head`): Ed25519 over
  the canonical JSON of ``{"key_id", "root_hash", "tree_size", "timestamp"}`` (`signed_bytes`);
  hashes and signatures travel as standard base64 with padding, the timestamp in milliseconds
  since the Unix epoch (UTC).
- **Key** (`log_key`): an Ed25519 key kept in data_dir/log-signing-key.pem (PKCS#8, mode 0600,
  made on first use); its id is the first 16 hex characters of SHA-256 of the raw public key.

Nothing here touches a database or reads a clock; only `log_key` touches the file system. The
offline verifier (`mobilend log verify`) needs only this module and `merkle`.
See docs/transparency-log.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mobilend.core.canonical import canonical_json
from mobilend.core.errors import ValidationFailed

LEAF_VERSION = 1
KINDS = (
    "decision",
    "contract_signed",
    "disbursement",
    "repayment",
    "reversal",
    "write_off",
    "refund",
    "pledge_registered",
    "pledge_released",
    "pledge_forfeited",
    "pledge_liquidated",
    "device_command",
)
MAX_REFS = 16
MAX_REF_INT = 2**53 - 1  # exact in every JSON reader, JavaScript included
REF_KEY = re.compile(r"[a-z][a-z0-9_]{0,28}_id")  # loan_id, entry_id, command_id...
REF_TEXT = re.compile(r"[A-Za-z0-9._:-]{1,64}")
AT_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
LEAF_FIELDS = frozenset({"v", "kind", "refs", "digest", "at"})
STH_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")
KEY_FILE = "log-signing-key.pem"
KEY_ID_TEXT = re.compile(r"[0-9a-f]{16}")
HASH_SIZE = 32
SIGNATURE_SIZE = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- encodings ---------------------------------------------------------------------------


def b64(data: bytes) -> str:
    """Standard base64 with padding (as Certificate Transparency's JSON API uses)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, *, field: str, size: int | None = None) -> bytes:
    """Decode standard base64 (with or without padding); optionally of an exact byte size."""
    if not isinstance(text, str) or not text.isascii():
        raise ValidationFailed(field, "base64", f"{field} must be base64 text")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(field, "base64", f"{field} is not base64") from exc
    if size is not None and len(data) != size:
        raise ValidationFailed(field, "length", f"{field} must be {size} bytes, got {len(data)}")
    return data


def timestamp_ms(moment: datetime, *, field: str = "now") -> int:
    """Whole milliseconds since 1970-01-01T00:00:00Z (truncated) of an aware datetime."""
    _require_aware(moment, field)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def format_at(moment: datetime, *, field: str = "at") -> str:
    """'2025-01-15T04:00:00.123Z': UTC, milliseconds (truncated), the form leaves carry."""
    _require_aware(moment, field)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _require_aware(moment: Any, field: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValidationFailed(field, "timezone-aware", f"{field} must be a timezone-aware time")


# -- leaves ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf's fields, as read back from its input bytes."""

    kind: str
    refs: Mapping[str, int | str]
    digest: str  # 64 lowercase hex characters
    at: str  # format_at form

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "refs": dict(self.refs), "digest": self.digest, "at": self.at}


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValidationFailed("kind", "one-of", f"kind must be one of {list(KINDS)}")
    return str(kind)


def check_refs(refs: Any) -> dict[str, int | str]:
    """Ids only: 1 to 16 names ending in ``_id`` (``loan_id``), each an int in [0, 2**53) or a
    short id-like string ([A-Za-z0-9._:-]{1,64}): no room for names, phones or free text."""
    if not isinstance(refs, Mapping) or not 1 <= len(refs) <= MAX_REFS:
        raise ValidationFailed("refs", "ids", f"refs must map 1 to {MAX_REFS} names to ids")
    checked: dict[str, int | str] = {}
    for key, value in refs.items():
        field = f"refs.{key}" if isinstance(key, str) and len(key) <= 64 else "refs"
        if not isinstance(key, str) or not REF_KEY.fullmatch(key):
            raise ValidationFailed(
                field, "ref-name", f"ref name {key!r} is not an id name like loan_id"
            )
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationFailed(field, "id", f"{field} must be an integer id or an id string")
        if isinstance(value, int) and not 0 <= value <= MAX_REF_INT:
            raise ValidationFailed(field, "id", f"{field} must be in [0, 2**53)")
        if isinstance(value, str) and not REF_TEXT.fullmatch(value):
            raise ValidationFailed(
                field, "id", f"{field} must match [A-Za-z0-9._:-]{{1,64}} (ids only)"
            )
        checked[key] = value
    return checked


def check_digest(digest: Any) -> str:
    """A SHA-256 digest as 32 bytes or 64 hex characters; returned as lowercase hex."""
    if isinstance(digest, bytes) and len(digest) == HASH_SIZE:
        return digest.hex()
    if isinstance(digest, str) and HEX_DIGEST.fullmatch(digest):
        return digest.lower()
    raise ValidationFailed("digest", "sha256", "digest must be a SHA-256: 32 bytes or 64 hex")


def encode_leaf(leaf: Leaf) -> bytes:
    """The leaf input bytes of already checked fields."""
    return canonical_json(
        {
            "v": LEAF_VERSION,
            "kind": leaf.kind,
            "refs": dict(leaf.refs),
            "digest": leaf.digest,
            "at": leaf.at,
        }
    )


def make_leaf(*, kind: str, refs: Mapping[str, Any], digest: bytes | str, at: datetime) -> Leaf:
    """Check the fields of a log record and return them in leaf form."""
    return Leaf(check_kind(kind), check_refs(refs), check_digest(digest), format_at(at))


def leaf_input(*, kind: str, refs: Mapping[str, Any], digest: bytes | str, at: datetime) -> bytes:
    """``{"at":…,"digest":…,"kind":…,"refs":{…},"v":1}`` as canonical JSON bytes."""
    return encode_leaf(make_leaf(kind=kind, refs=refs, digest=digest, at=at))


def parse_leaf(data: bytes) -> Leaf:
    """Read a leaf input back; raises ValidationFailed unless it is exactly canonical v1."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed("leaf_input", "json", f"leaf_input is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or set(obj) != LEAF_FIELDS:
        raise ValidationFailed(
            "leaf_input", "fields", f"a leaf has the fields {sorted(LEAF_FIELDS)}"
        )
    if obj["v"] != LEAF_VERSION or isinstance(obj["v"], bool):
        raise ValidationFailed("leaf_input", "version", f"leaf version must be {LEAF_VERSION}")
    at = obj["at"]
    if not isinstance(at, str) or not AT_TEXT.fullmatch(at):
        raise ValidationFailed("at", "utc-time", "at must look like 2025-01-15T04:00:00.000Z")
    digest = obj["digest"]
    if not isinstance(digest, str) or digest != check_digest(digest):
        raise ValidationFailed("digest", "sha256", "digest must be 64 lowercase hex characters")
    leaf = Leaf(check_kind(obj["kind"]), check_refs(obj["refs"]), digest, at)
    if encode_leaf(leaf) != data:
        raise ValidationFailed("leaf_input", "canonical", "leaf_input is not canonical JSON")
    return leaf


# -- keys --------------------------------------------------------------------------------

_KEYS: dict[Path, Ed25519PrivateKey] = {}
_KEYS_LOCK = threading.Lock()


def raw_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def public_key_json(key: Ed25519PrivateKey) -> dict[str, str]:
    """What GET /v1/log/public-key answers, and what `load_public_key` reads back."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "algorithm": "Ed25519",
        "key_id": key_id_of(key),
        "public_key": b64(raw_public_key(key)),
        "pem": pem.decode("ascii"),
    }


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from base64 of its 32 raw bytes, a SubjectPublicKeyInfo PEM, or
    the JSON of GET /v1/log/public-key (its ``public_key``)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed("public_key", "json", f"not JSON: {exc}") from exc
        found = obj.get("public_key") if isinstance(obj, dict) else None
        if not isinstance(found, str):
            raise ValidationFailed("public_key", "required", "the JSON has no public_key")
        text = found.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValidationFailed("public_key", "ed25519", f"cannot load PEM: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValidationFailed("public_key", "ed25519", "the PEM key is not Ed25519")
        return key
    raw = unb64(text, field="public_key", size=32)
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValidationFailed("public_key", "ed25519", str(exc)) from exc


def log_key(data_dir: Path, *, key_path: Path | None = None) -> Ed25519PrivateKey:
    """The log's signing key: ``key_path`` if given, else data_dir/log-signing-key.pem, made
    on first use (mode 0600; two processes racing to make it end up with the same key)."""
    path = Path(key_path if key_path is not None else Path(data_dir) / KEY_FILE).resolve()
    with _KEYS_LOCK:
        key = _KEYS.get(path)
        if key is None:
            key = _load_or_create(path, create=key_path is None)
            _KEYS[path] = key
        return key


def _load_or_create(path: Path, *, create: bool) -> Ed25519PrivateKey:
    try:
        return _key_from_pem(path.read_bytes())
    except FileNotFoundError:
        if not create:
            raise ValidationFailed("key_path", "exists", f"no log signing key at {path}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(tmp, path)  # atomic, and fails if another process made the key first
        except FileExistsError:
            return _key_from_pem(path.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationFailed("key_path", "ed25519-pem", f"cannot load key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationFailed("key_path", "ed25519-pem", "the log signing key is not Ed25519")
    return key


# -- signed tree heads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: int  # milliseconds since the epoch, UTC
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": b64(self.signature),
        }

    @classmethod
    def from_json(cls, obj: Any, *, field: str = "sth") -> SignedTreeHead:
        """Read an STH as the API serves it; raises ValidationFailed naming the bad field."""
        if not isinstance(obj, Mapping):
            raise ValidationFailed(field, "object", f"{field} must be a JSON object")
        for name in STH_FIELDS:
            if name not in obj:
                raise ValidationFailed(f"{field}.{name}", "required", f"{field}.{name} is missing")
        for name in ("tree_size", "timestamp"):
            value = obj[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationFailed(
                    f"{field}.{name}", "non-negative", f"{field}.{name} must be an integer >= 0"
                )
        key_id = obj["key_id"]
        if not isinstance(key_id, str) or not KEY_ID_TEXT.fullmatch(key_id):
            raise ValidationFailed(f"{field}.key_id", "key-id", "key_id is 16 lowercase hex")
        return cls(
            tree_size=obj["tree_size"],
            root_hash=unb64(obj["root_hash"], field=f"{field}.root_hash", size=HASH_SIZE),
            timestamp=obj["timestamp"],
            key_id=key_id,
            signature=unb64(obj["signature"], field=f"{field}.signature", size=SIGNATURE_SIZE),
        )


def signed_bytes(tree_size: int, root_hash: bytes, timestamp: int, key_id: str) -> bytes:
    """``{"key_id":"…","root_hash":"<base64>","timestamp":…,"tree_size":…}``: what is signed."""
    return canonical_json(
        {
            "key_id": key_id,
            "root_hash": b64(root_hash),
            "timestamp": timestamp,
            "tree_size": tree_size,
        }
    )


def sign_tree_head(
    key: Ed25519PrivateKey, *, tree_size: int, root_hash: bytes, timestamp: int
) -> SignedTreeHead:
    if tree_size < 0 or timestamp < 0 or len(root_hash) != HASH_SIZE:
        raise ValidationFailed(
            "tree_head", "range", "a tree head needs sizes >= 0 and a 32-byte root"
        )
    key_id = key_id_of(key)
    signature = key.sign(signed_bytes(tree_size, root_hash, timestamp, key_id))
    return SignedTreeHead(tree_size, root_hash, timestamp, key_id, signature)


def verify_tree_head(sth: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """True if the STH names this key and its signature holds. Never raises on bad input."""
    if sth.key_id != key_id_of(public_key) or len(sth.root_hash) != HASH_SIZE:
        return False
    message = signed_bytes(sth.tree_size, sth.root_hash, sth.timestamp, sth.key_id)
    try:
        public_key.verify(sth.signature, message)
    except InvalidSignature:
        return False
    return True
