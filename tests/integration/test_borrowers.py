"""Borrowers and consents on SQLite and PostgreSQL: encryption at rest, duplicates, look-ups,
key rotation, consent withdrawal and require_consent, append-only consent rows."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.origination import service
from mobilend.origination.models import Borrower
from mobilend.origination.pii import PiiCipher
from mobilend.origination.schemas import BorrowerIn, ConsentIn
from tests.integration.helpers import Db
from tests.unit.test_validation import gb11643_check

pytestmark = pytest.mark.integration

K1, K2, INDEX = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))
CIPHER = PiiCipher({"k1": K1}, "k1", INDEX)
TODAY = date(2025, 1, 15)
SH = ZoneInfo("Asia/Shanghai")
NOON = datetime(2025, 1, 15, 12, tzinfo=SH)  # 04:00 UTC


def new_id_number(birth: date | None = None, rng: random.Random | None = None) -> str:
    """A valid, random resident ID (Beijing Chaoyang) so tests never collide on PostgreSQL."""
    rng = rng or random.Random()
    birth = birth or date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
    first17 = f"110105{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + gb11643_check(first17)


def new_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


def person(**over: str | None) -> BorrowerIn:
    data: dict[str, str | None] = {
        "name": "张三",
        "id_number": new_id_number(),
        "phone": new_phone(),
        "bank_card": "6200000000000005",
        "address": "北京市朝阳区建国路88号",
    }
    data.update(over)
    return BorrowerIn.model_validate(data)


def register(db: Db, data: BorrowerIn, cipher: PiiCipher = CIPHER) -> int:
    return db(lambda s: service.register_borrower(s, data, cipher=cipher, today=TODAY).id)


def consent(purpose: str, **over: object) -> ConsentIn:
    body = {
        "purpose": purpose,
        "scope": "查询征信报告 query my credit report",
        "text_version": "v1",
    }
    return ConsentIn.model_validate({**body, **over})


def test_register_and_read_back_plaintext_never_stored(db_url: str) -> None:
    db = Db(db_url)
    data = person()
    assert data.id_number is not None
    borrower_id = register(db, data)
    rec = db(lambda s: service.get_borrower(s, borrower_id, cipher=CIPHER))
    assert (rec.name, rec.id_number, rec.bank_card) == ("张三", data.id_number, "6200000000000005")
    assert rec.phone == "+86" + data.phone
    assert rec.address == "北京市朝阳区建国路88号"
    number = data.id_number
    assert rec.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert rec.region_code == "110105" and rec.gender in ("male", "female")
    assert data.id_number not in repr(rec) and "张三" not in repr(rec)

    secrets = [data.id_number, data.phone, "张三", "6200000000000005", "建国路"]
    row = db(
        lambda s: (
            s.execute(text("SELECT * FROM borrowers WHERE id = :i"), {"i": borrower_id})
            .one()
            ._asdict()
        )
    )
    raw = " ".join(str(value) for value in row.values())
    for secret in secrets:
        assert secret not in raw
    assert str(row["name_enc"]).startswith("k1:") and len(str(row["id_number_index"])) == 64

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        files = [Path(url.database), Path(url.database + "-wal")]
        blob = b"".join(f.read_bytes() for f in files if f.exists())
        assert blob  # the test reads the real file
        for secret in secrets:
            assert secret.encode() not in blob


def test_duplicate_id_number_is_refused_in_any_spelling(db_url: str) -> None:
    db = Db(db_url)
    number = new_id_number()
    register(db, person(id_number=number))
    for spelling in (number, number.lower(), f"{number[:6]} {number[6:14]} {number[14:]}"):
        with pytest.raises(Conflict) as err:
            register(db, person(id_number=spelling, name="李四"))
        assert (err.value.field, err.value.rule) == ("id_number", "duplicate")
    found = db(lambda s: service.find_by_id_number(s, number.lower(), cipher=CIPHER))
    assert found is not None and found.id_number == number
    other = new_id_number()
    assert db(lambda s: service.find_by_id_number(s, other, cipher=CIPHER)) is None


def test_merchants_and_shared_phones(db_url: str) -> None:
    db = Db(db_url)
    phone = new_phone()
    a = register(db, person(phone=phone))
    b = register(db, person(phone=f"+86 {phone}", name="王五"))
    shared = db(lambda s: service.find_by_phone(s, phone, cipher=CIPHER))
    assert [r.id for r in shared] == [a, b]
    # A merchant is keyed by its USCC; register one unless another test already did.
    code = "91110108551385082Q"
    existing = db(lambda s: service.find_by_id_number(s, code, cipher=CIPHER, kind="merchant"))
    if existing is None:
        merchant = BorrowerIn(kind="merchant", name="某某小店", uscc=code, phone=new_phone())
        m = register(db, merchant)
        rec = db(lambda s: service.get_borrower(s, m, cipher=CIPHER))
        assert (rec.kind, rec.id_number, rec.region_code, rec.birth_date) == (
            "merchant",
            code,
            "110108",
            None,
        )
    with pytest.raises(Conflict):
        register(db, BorrowerIn(kind="merchant", name="x", uscc=code, phone=new_phone()))
    with pytest.raises(ValidationFailed) as err:
        register(db, BorrowerIn(kind="merchant", name="x", phone=new_phone()))
    assert (err.value.field, err.value.rule) == ("uscc", "required")


def test_invalid_fields_and_age_limits(db_url: str) -> None:
    db = Db(db_url)
    minor = new_id_number(birth=date(2010, 5, 1))
    cases = [
        (person(id_number=minor), ("id_number", "min-age")),
        (person(id_number="11010519491231003X"), ("id_number", "checksum")),
        (person(phone="12345"), ("phone", "invalid")),
        (person(bank_card="6200000000000006"), ("bank_card", "checksum")),
        (person(id_number=None), ("id_number", "required")),
        (person(name="  "), ("name", "required")),
    ]
    for data, expected in cases:
        with pytest.raises(ValidationFailed) as err:
            register(db, data)
        assert (err.value.field, err.value.rule) == expected
    old = new_id_number(birth=date(1950, 1, 1))
    with pytest.raises(ValidationFailed) as err:
        db(
            lambda s: service.register_borrower(
                s, person(id_number=old), cipher=CIPHER, today=TODAY, max_age=70
            )
        )
    assert err.value.rule == "max-age"
    with pytest.raises(NotFound):
        db(lambda s: service.get_borrower(s, 10**9, cipher=CIPHER))


def test_key_rotation(db_url: str) -> None:
    db = Db(db_url)
    # Key ids of this test alone: the PostgreSQL database is shared by the session's tests.
    old_kid, new_kid = f"old-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    old = PiiCipher({old_kid: K1}, old_kid, INDEX)
    both = PiiCipher({old_kid: K1, new_kid: K2}, new_kid, INDEX)
    data = person()
    borrower_id = register(db, data, old)
    with_ip = consent("scoring", ip="203.0.113.9")
    db(lambda s: service.record_consent(s, borrower_id, with_ip, cipher=old, at=NOON))
    assert db(lambda s: service.rotate_borrower_keys(s, borrower_id, cipher=both)) is True
    assert db(lambda s: service.rotate_borrower_keys(s, borrower_id, cipher=both)) is False
    only_new = PiiCipher({new_kid: K2}, new_kid, INDEX)
    rec = db(lambda s: service.get_borrower(s, borrower_id, cipher=only_new))
    assert rec.id_number == data.id_number and rec.key_id == new_kid
    row = db(lambda s: s.get(Borrower, borrower_id))
    assert row is not None
    tokens = (row.name_enc, row.id_number_enc, row.phone_enc, row.bank_card_enc, row.address_enc)
    assert all(t and t.startswith(new_kid + ":") for t in tokens)
    ips = db(lambda s: [c.ip_enc for c in service.list_consents(s, borrower_id)])
    assert ips and all(ip and ip.startswith(new_kid + ":") for ip in ips)
    # Batches: everything left on the old key moves to the new one, then nothing is left.
    others = [register(db, person(), old) for _ in range(3)]
    assert db(lambda s: service.rotate_keys(s, cipher=both, limit=2, from_kid=old_kid)) == 2
    assert db(lambda s: service.rotate_keys(s, cipher=both, limit=2, from_kid=old_kid)) == 1
    assert db(lambda s: service.rotate_keys(s, cipher=both, from_kid=old_kid)) == 0
    for other in others:
        assert db(lambda s: service.get_borrower(s, other, cipher=only_new)).key_id == new_kid
    # A new index key: rotation recomputes the blind indexes, so look-ups keep working.
    number = data.id_number or ""
    new_index = PiiCipher({new_kid: K2}, new_kid, bytes(32))
    assert db(lambda s: service.find_by_id_number(s, number, cipher=new_index)) is None
    db(lambda s: service.rotate_borrower_keys(s, borrower_id, cipher=new_index))
    found = db(lambda s: service.find_by_id_number(s, number, cipher=new_index))
    assert found is not None and found.id == borrower_id


def test_consent_withdrawal_and_require_consent(db_url: str) -> None:
    db = Db(db_url)
    borrower_id = register(db, person())
    c = db(
        lambda s: service.record_consent(
            s, borrower_id, consent("credit_bureau"), cipher=CIPHER, at=NOON
        )
    )
    assert c.sensitive is True and c.granted_at == NOON
    db(
        lambda s: service.record_consent(
            s, borrower_id, consent("marketing"), cipher=CIPHER, at=NOON
        )
    )
    later = datetime(2025, 1, 15, 5, tzinfo=UTC)  # 13:00 in Shanghai: an hour after the grant
    db(lambda s: service.require_consent(s, borrower_id, ["credit_bureau", "marketing"], later))
    before = datetime(2025, 1, 15, 11, 30, tzinfo=SH)
    with pytest.raises(service.ConsentRequired) as err:
        db(lambda s: service.require_consent(s, borrower_id, ["credit_bureau"], before))
    assert err.value.missing == ["credit_bureau"] and err.value.rule == "consent-required"
    with pytest.raises(service.ConsentRequired) as err:
        db(
            lambda s: service.require_consent(
                s, borrower_id, ["scoring", "credit_bureau", "device_data"], later
            )
        )
    assert err.value.missing == ["scoring", "device_data"]
    assert "scoring" in err.value.detail and err.value.status == 409

    withdrawn_at = datetime(2025, 1, 20, 9, tzinfo=SH)
    w = db(lambda s: service.withdraw_consent(s, borrower_id, c.id, at=withdrawn_at))
    assert w.withdrawn_at == withdrawn_at
    db(lambda s: service.require_consent(s, borrower_id, ["credit_bureau"], later))  # then
    with pytest.raises(service.ConsentRequired):
        db(lambda s: service.require_consent(s, borrower_id, ["credit_bureau"], withdrawn_at))
    with pytest.raises(Conflict) as conflict:
        db(lambda s: service.withdraw_consent(s, borrower_id, c.id, at=withdrawn_at))
    assert conflict.value.rule == "already-withdrawn"
    # A fresh consent restores it; the withdrawn record is kept.
    db(
        lambda s: service.record_consent(
            s,
            borrower_id,
            consent("credit_bureau"),
            cipher=CIPHER,
            at=withdrawn_at + timedelta(hours=1),
        )
    )
    db(
        lambda s: service.require_consent(
            s, borrower_id, ["credit_bureau"], withdrawn_at + timedelta(hours=2)
        )
    )
    rows = db(lambda s: service.list_consents(s, borrower_id))
    assert [(r.purpose, r.withdrawn_at is None) for r in rows] == [
        ("credit_bureau", False),
        ("marketing", True),
        ("credit_bureau", True),
    ]
    with pytest.raises(NotFound):
        db(lambda s: service.require_consent(s, 10**9, ["scoring"], later))
    with pytest.raises(ValueError, match="unknown consent purposes"):
        db(lambda s: service.require_consent(s, borrower_id, ["scorng"], later))
    with pytest.raises(NotFound):
        db(lambda s: service.withdraw_consent(s, borrower_id + 1, c.id, at=withdrawn_at))


def test_consent_rules(db_url: str) -> None:
    db = Db(db_url)
    borrower_id = register(db, person())
    cases = [
        (consent("payday"), ("purpose", "known-purpose")),
        (consent("credit_bureau", sensitive=False), ("sensitive", "separate-consent")),
        (consent("scoring", granted_at="2025-01-16T00:00:00+08:00"), ("granted_at", "not-future")),
    ]
    for data, expected in cases:
        with pytest.raises(ValidationFailed) as err:
            db(lambda s: service.record_consent(s, borrower_id, data, cipher=CIPHER, at=NOON))
        assert (err.value.field, err.value.rule) == expected
    c = db(
        lambda s: service.record_consent(
            s, borrower_id, consent("marketing", sensitive=True), cipher=CIPHER, at=NOON
        )
    )
    assert c.sensitive is True  # a purpose may always be asked for separately


def test_consents_are_append_only_in_the_database(db_url: str) -> None:
    db = Db(db_url)
    borrower_id = register(db, person())
    c = db(
        lambda s: service.record_consent(s, borrower_id, consent("scoring"), cipher=CIPHER, at=NOON)
    )
    forbidden = [
        ("DELETE FROM consents WHERE id = :i", {}),
        ("UPDATE consents SET purpose = 'marketing' WHERE id = :i", {}),
        ("UPDATE consents SET scope = 'other' WHERE id = :i", {}),
    ]
    for sql, params in forbidden:
        with pytest.raises(DBAPIError):
            db(lambda s: s.execute(text(sql), {"i": c.id, **params}))
    db(lambda s: service.withdraw_consent(s, borrower_id, c.id, at=NOON + timedelta(days=1)))
    with pytest.raises(DBAPIError):
        db(
            lambda s: s.execute(
                text("UPDATE consents SET withdrawn_at = NULL WHERE id = :i"), {"i": c.id}
            )
        )
    rows = db(lambda s: s.scalar(text("SELECT count(*) FROM consents WHERE id = :i"), {"i": c.id}))
    assert rows == 1
