"""Personal data at rest: AES-256-GCM with a key id per value, HMAC blind indexes, masking.

A stored value is the text ``kid:base64url(nonce | ciphertext+tag)``. The key id names the key
that sealed it, so old values stay readable after a new key becomes active, and rotation
re-seals them with the active key. Each value is bound to its field by the GCM associated data
(``context``): a ciphertext copied into another column does not decrypt.

A blind index is HMAC-SHA256 under a separate key over the field name and the normalized value:
equal inputs give equal indexes (exact look-ups, duplicate detection) and nothing else leaks.

No database, web or clock code here. `load_cipher` reads (or, in zero-config development,
creates once) the key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce
KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
KEY_FILE = "pii-keys.json"


class PiiError(Exception):
    """A value cannot be decrypted (unknown key, damaged or tampered) or keys are misconfigured."""


@dataclass(frozen=True)
class PiiCipher:
    """Data keys by key id, the active key id, and the blind-index key. Never printed."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_kid: str
    index_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for kid, key in self.keys.items():
            if not KID.match(kid):
                raise PiiError(f"key id {kid!r} must match {KID.pattern}")
            if len(key) != KEY_BYTES:
                raise PiiError(f"key {kid!r} must be {KEY_BYTES} bytes, not {len(key)}")
        if self.active_kid not in self.keys:
            raise PiiError(f"active key id {self.active_kid!r} is not among the keys")
        if len(self.index_key) < KEY_BYTES:
            raise PiiError(f"the blind-index key must be at least {KEY_BYTES} bytes")

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal `plaintext` with the active key; `context` (the field name) is authenticated."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_kid]).encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return f"{self.active_kid}:{_b64(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Open a value sealed by any known key; raises PiiError when it was altered."""
        kid, blob = _split(token)
        key = self.keys.get(kid)
        if key is None:
            raise PiiError(f"no key with id {kid!r} is configured")
        try:
            raw = base64.urlsafe_b64decode(blob.encode())
        except (binascii.Error, ValueError) as exc:
            raise PiiError("the stored value is not valid base64") from exc
        if len(raw) < NONCE_BYTES + 16:
            raise PiiError("the stored value is too short")
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag as exc:
            raise PiiError(f"the stored {context} failed authentication") from exc
        return plain.decode()

    def reencrypt(self, token: str, *, context: str) -> str:
        """The same value sealed with the active key (unchanged when it already is)."""
        if key_id(token) == self.active_kid:
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    def blind_index(self, value: str, *, context: str) -> str:
        """HMAC-SHA256 hex of the normalized value, separated by field (`context`)."""
        message = context.encode() + b"\x00" + normalize(value).encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


def key_id(token: str) -> str:
    return _split(token)[0]


def normalize(value: str) -> str:
    """Canonical text for indexing: NFKC (full-width digits to ASCII), no spaces, upper case."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _split(token: str) -> tuple[str, str]:
    kid, sep, blob = token.partition(":")
    if not sep or not kid or not blob:
        raise PiiError("the stored value is not of the form kid:data")
    return kid, blob


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _key(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text.encode())
        except (binascii.Error, ValueError) as exc:
            raise PiiError(f"{what} is not base64") from exc


def new_key() -> str:
    """A fresh 32-byte key as standard base64 (for MOBILEND_PII_KEYS and the index key)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


# ---------------------------------------------------------------- key configuration


def load_cipher(
    *,
    keys: Mapping[str, str] | None,
    active_kid: str | None,
    index_key: str | None,
    data_dir: Path,
) -> PiiCipher:
    """Keys from configuration or, when none are configured, from data_dir/pii-keys.json.

    Configured keys (`keys`, base64 by key id) need the index key too; the active key id may
    be left out when there is one key. With nothing configured (zero-config development) the
    key file is created once (mode 0600) and reused; production must configure keys.
    """
    if keys:
        if not index_key:
            raise PiiError("MOBILEND_PII_INDEX_KEY is required when MOBILEND_PII_KEYS is set")
        if active_kid is None:
            if len(keys) != 1:
                raise PiiError("MOBILEND_PII_ACTIVE_KEY is required with several keys")
            active_kid = next(iter(keys))
        return PiiCipher(
            {kid: _key(k, f"key {kid!r}") for kid, k in keys.items()},
            active_kid,
            _key(index_key, "the index key"),
        )
    if active_kid or index_key:
        raise PiiError("MOBILEND_PII_KEYS must be set with MOBILEND_PII_ACTIVE_KEY/INDEX_KEY")
    return _from_file(data_dir / KEY_FILE)


def _from_file(path: Path) -> PiiCipher:
    if not path.exists():
        _create_key_file(path)
    try:
        data = json.loads(path.read_text())
        return load_cipher(
            keys=data["keys"],
            active_kid=data["active"],
            index_key=data["index_key"],
            data_dir=path.parent,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PiiError(f"{path} is not a valid key file") from exc


def _create_key_file(path: Path) -> None:
    """Write a new key file atomically; when another process won the race, keep its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({"active": "k1", "keys": {"k1": new_key()}, "index_key": new_key()})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pii-keys-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(content + "\n")
        os.link(tmp, path)  # fails if the file exists: never overwrite keys
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    path.chmod(0o600)


# ---------------------------------------------------------------- masking


def mask_id_number(value: str) -> str:
    """110105********002X: the first 6 (region) and last 4 characters kept."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678 (the +86 prefix dropped); other countries keep the '+' and first 2 digits."""
    if value.startswith("+86"):
        value = value[3:]
    if len(value) < 8:
        return "*" * max(len(value) - 2, 0) + value[-2:]
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***; Latin names keep the first letter: John Smith -> J***."""
    value = value.strip()
    if not value:
        return ""
    if _is_cjk(value[0]):
        return value[0] + "*" * max(len(value) - 1, 1)
    return value[0] + "***"


def mask_bank_card(value: str) -> str:
    """**** 0123: the last 4 digits only."""
    return "**** " + value[-4:]


def mask_address(value: str) -> str:
    """The first 6 characters (province and city, usually) and then ****."""
    return value[:6] + "****"


def _is_cjk(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA"))
