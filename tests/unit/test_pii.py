"""Encryption at rest, blind indexes, key files and masking (origination/pii.py)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mobilend.origination import pii
from mobilend.origination.pii import PiiCipher, PiiError, load_cipher

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
INDEX = bytes(range(64, 96))
ID = "11010519491231002X"


def cipher(active: str = "k1", index: bytes = INDEX) -> PiiCipher:
    return PiiCipher({"k1": K1, "k2": K2}, active, index)


def test_round_trip_and_format() -> None:
    c = cipher()
    token = c.encrypt(ID, context="borrowers.id_number")
    assert token.startswith("k1:")
    assert ID not in token
    assert c.decrypt(token, context="borrowers.id_number") == ID
    # Fresh nonce each time: the same value never gives the same ciphertext.
    assert c.encrypt(ID, context="borrowers.id_number") != token
    # Chinese text survives.
    assert c.decrypt(c.encrypt("张三", context="n"), context="n") == "张三"


def test_ciphertext_is_standard_aes_gcm() -> None:
    """A second implementation opens it: nonce (12 bytes) | ciphertext+tag, AAD = context."""
    token = cipher().encrypt("13812345678", context="borrowers.phone")
    raw = base64.urlsafe_b64decode(token.split(":", 1)[1])
    plain = AESGCM(K1).decrypt(raw[:12], raw[12:], b"borrowers.phone")
    assert plain == b"13812345678"
    assert len(raw) == 12 + len("13812345678") + 16


def test_tampering_is_detected() -> None:
    c = cipher()
    token = c.encrypt(ID, context="borrowers.id_number")
    kid, blob = token.split(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[15] ^= 0x01  # one bit of the ciphertext
    flipped = f"{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(PiiError):
        c.decrypt(flipped, context="borrowers.id_number")
    # A value moved to another column does not open either (context is authenticated).
    with pytest.raises(PiiError):
        c.decrypt(token, context="borrowers.phone")
    with pytest.raises(PiiError, match="no key"):
        c.decrypt("k9:" + blob, context="borrowers.id_number")
    with pytest.raises(PiiError):
        c.decrypt("no-separator", context="borrowers.id_number")
    with pytest.raises(PiiError):
        c.decrypt("k1:AAAA", context="borrowers.id_number")


def test_rotation_reseals_with_the_active_key() -> None:
    old = cipher("k1").encrypt(ID, context="f")
    new_cipher = cipher("k2")
    assert new_cipher.decrypt(old, context="f") == ID  # old values stay readable
    rotated = new_cipher.reencrypt(old, context="f")
    assert pii.key_id(rotated) == "k2"
    assert new_cipher.reencrypt(rotated, context="f") == rotated  # already on k2: unchanged
    only_k2 = PiiCipher({"k2": K2}, "k2", INDEX)
    assert only_k2.decrypt(rotated, context="f") == ID
    with pytest.raises(PiiError):
        only_k2.decrypt(old, context="f")


def test_blind_index() -> None:
    c = cipher()
    a = c.blind_index(ID, context="id_number")
    assert a == c.blind_index(ID, context="id_number")
    assert a == c.blind_index(" 110105 19491231002x ", context="id_number")  # normalized
    assert a == c.blind_index(
        "１１０１０５１９４９１２３１００２Ｘ", context="id_number"
    )  # full width
    assert a != c.blind_index("110105194912310037", context="id_number")
    assert a != c.blind_index(ID, context="phone")  # separated by field
    assert a != cipher(index=bytes(32)).blind_index(ID, context="id_number")  # another key
    assert len(a) == 64 and ID not in a
    # Independent HMAC: key, field, NUL, value.
    import hashlib
    import hmac

    assert a == hmac.new(INDEX, b"id_number\x00" + ID.encode(), hashlib.sha256).hexdigest()


def test_keys_are_checked() -> None:
    with pytest.raises(PiiError, match="32 bytes"):
        PiiCipher({"k1": b"short"}, "k1", INDEX)
    with pytest.raises(PiiError, match="active"):
        PiiCipher({"k1": K1}, "k2", INDEX)
    with pytest.raises(PiiError, match="key id"):
        PiiCipher({"k:1": K1}, "k:1", INDEX)
    assert "K1" not in repr(cipher()) and str(K1) not in repr(cipher())


def test_configured_keys(tmp_path: Path) -> None:
    b64 = {"k1": base64.b64encode(K1).decode(), "k2": base64.b64encode(K2).decode()}
    idx = base64.b64encode(INDEX).decode()
    c = load_cipher(keys=b64, active_kid="k2", index_key=idx, data_dir=tmp_path)
    assert c.active_kid == "k2" and c.keys["k1"] == K1 and c.index_key == INDEX
    one = load_cipher(keys={"k1": b64["k1"]}, active_kid=None, index_key=idx, data_dir=tmp_path)
    assert one.active_kid == "k1"
    with pytest.raises(PiiError, match="INDEX_KEY"):
        load_cipher(keys=b64, active_kid="k1", index_key=None, data_dir=tmp_path)
    with pytest.raises(PiiError, match="ACTIVE_KEY"):
        load_cipher(keys=b64, active_kid=None, index_key=idx, data_dir=tmp_path)
    with pytest.raises(PiiError):
        load_cipher(keys=None, active_kid="k1", index_key=None, data_dir=tmp_path)
    assert not (tmp_path / "pii-keys.json").exists()  # configured keys never touch the file


def test_development_key_file_is_made_once(tmp_path: Path) -> None:
    first = load_cipher(keys=None, active_kid=None, index_key=None, data_dir=tmp_path / "var")
    path = tmp_path / "var" / "pii-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["active"] == first.active_kid
    assert base64.b64decode(data["keys"][first.active_kid]) == first.keys[first.active_kid]
    again = load_cipher(keys=None, active_kid=None, index_key=None, data_dir=tmp_path / "var")
    token = first.encrypt(ID, context="f")
    assert again.decrypt(token, context="f") == ID
    assert again.blind_index(ID, context="f") == first.blind_index(ID, context="f")
    assert [p.name for p in path.parent.iterdir()] == ["pii-keys.json"]  # no temp files left
    path.write_text("{}")
    with pytest.raises(PiiError, match="not a valid key file"):
        load_cipher(keys=None, active_kid=None, index_key=None, data_dir=tmp_path / "var")


def test_masks() -> None:
    assert pii.mask_id_number(ID) == "110105********002X"
    assert pii.mask_id_number("91110108551385082Q") == "911101********082Q"
    assert pii.mask_phone("+8613812345678") == "138****5678"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone("+14155552671") == "+14*****2671"
    assert pii.mask_name("张三") == "张*"
    assert pii.mask_name("欧阳娜娜") == "欧***"
    assert pii.mask_name("John Smith") == "J***"
    assert pii.mask_bank_card("6200000000000005") == "**** 0005"
    assert pii.mask_address("北京市朝阳区建国路88号") == "北京市朝阳区****"
