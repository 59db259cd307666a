"""The server's Ed25519 key that signs device commands (data_dir/device-signing-key.pem).

Phones pin its public key at enrollment: every server process must read the same file, and
it must be backed up; a lost or replaced key makes every phone refuse every command (there is
no key rotation in the wire format yet).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mobilend.collateral import commands
from mobilend.settings import get_settings

KEY_FILE = "device-signing-key.pem"

_KEYS: dict[Path, tuple[Ed25519PrivateKey, str]] = {}
_KEYS_LOCK = threading.Lock()


def key_id_of(private_key: Ed25519PrivateKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw 32-byte public key."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def server_key(data_dir: Path) -> tuple[Ed25519PrivateKey, str]:
    """The server's Ed25519 key from data_dir/device-signing-key.pem (made on first use, 0600)."""
    path = (Path(data_dir) / KEY_FILE).resolve()
    with _KEYS_LOCK:
        cached = _KEYS.get(path)
        if cached is None:
            key = _load_or_create(path)
            cached = (key, key_id_of(key))
            _KEYS[path] = cached
        return cached


def _load_or_create(path: Path) -> Ed25519PrivateKey:
    try:
        return commands.private_key_from_pem(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key, _ = commands.generate_keypair()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(commands.private_key_to_pem(key))
        try:
            os.link(tmp, path)  # atomic, and fails if another process made the key first
        except FileExistsError:
            return commands.private_key_from_pem(path.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return key


def server_public_key(data_dir: Path) -> tuple[str, str]:
    """(base64url of the raw public key, key id): what the enrollment answer pins."""
    key, key_id = server_key(data_dir)
    return commands.public_key_b64(key), key_id


def data_dir_or_default(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else get_settings().data_dir
