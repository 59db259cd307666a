"""Identity field checks (origination/validation.py) with published numbers and hand-computed
check digits (the helpers below are second implementations of GB 11643, GB 32100 and Luhn)."""

from __future__ import annotations

from datetime import date

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.origination import validation as v

SAMPLE_ID = "11010519491231002X"  # the sample number published with GB 11643-1999


def gb11643_check(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def gb32100_check(first17: str) -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(chars.index(c) * w for c, w in zip(first17, weights, strict=True))
    return chars[(31 - total % 31) % 31]


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def failure(fn, *args, **kwargs) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as err:
        fn(*args, **kwargs)
    return err.value.field, err.value.rule


def test_sample_id_number() -> None:
    assert gb11643_check(SAMPLE_ID[:17]) == "X"
    info = v.parse_id_number(SAMPLE_ID)
    assert info.number == SAMPLE_ID
    assert info.birth_date == date(1949, 12, 31)
    assert info.gender == "female"  # 17th digit 2 is even
    assert info.region_code == "110105"  # 北京市朝阳区
    assert SAMPLE_ID not in repr(info)
    # Lower-case x, spaces and full-width digits are accepted and canonicalized.
    assert v.parse_id_number(" 110105 1949 1231 002x").number == SAMPLE_ID
    male = "36042619910101007"
    assert v.parse_id_number(male + gb11643_check(male)).gender == "male"


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("11010519491231003X", "checksum"),  # one digit changed
        ("11010519491231002", "length"),
        ("1101051949123100XX", "format"),
        ("11010519491331002" + gb11643_check("11010519491331002"), "birth-date"),  # month 13
        ("11010518891231002" + gb11643_check("11010518891231002"), "birth-date"),  # before 1900
        ("99999919491231002" + gb11643_check("99999919491231002"), "region"),
    ],
)
def test_bad_id_numbers(number: str, rule: str) -> None:
    assert failure(v.parse_id_number, number) == ("id_number", rule)


def test_birth_date_after_today_is_refused() -> None:
    future = "11010520300101001"
    number = future + gb11643_check(future)
    assert failure(v.parse_id_number, number, today=date(2025, 1, 15)) == (
        "id_number",
        "birth-date",
    )
    with pytest.raises(ValidationFailed) as err:
        v.parse_id_number("123", field="legal_rep_id")
    assert err.value.field == "legal_rep_id"


def test_uscc() -> None:
    code = "91110108551385082Q"
    assert gb32100_check(code[:17]) == "Q"
    assert v.check_uscc(code) == code
    assert v.check_uscc(code.lower()) == code
    assert v.uscc_region(code) == "110108"
    assert failure(v.check_uscc, "91110108551385082A") == ("uscc", "checksum")
    assert failure(v.check_uscc, "9111010855138508") == ("uscc", "length")
    assert failure(v.check_uscc, "I1110108551385082Q") == ("uscc", "format")


def test_phones() -> None:
    assert v.normalize_phone("13812345678") == "+8613812345678"
    assert v.normalize_phone("+86 138-1234-5678") == "+8613812345678"
    assert v.normalize_phone("008613812345678") == "+8613812345678"
    assert v.normalize_phone("+1 415 555 2671") == "+14155552671"  # fixed line or mobile (US)
    assert failure(v.normalize_phone, "abc") == ("phone", "format")
    # libphonenumber alone would read letters as keypad digits and accept this.
    assert failure(v.normalize_phone, "13800000000zz") == ("phone", "format")
    assert failure(v.normalize_phone, "138 0000 0000 ext. 12") == ("phone", "format")
    assert v.normalize_phone("１３８１２３４５６７８") == "+8613812345678"  # full-width digits
    assert failure(v.normalize_phone, "12345") == ("phone", "invalid")
    assert failure(v.normalize_phone, "010-12345678") == ("phone", "not-mobile")
    assert v.normalize_phone("010-12345678", mobile_only=False) == "+861012345678"


def test_bank_cards() -> None:
    for card in ("6200000000000005", "4111111111111111", "6205500000000000004"):
        assert luhn_ok(card)
        assert v.check_bank_card(card) == card
    assert v.check_bank_card("6200 0000 0000 0005") == "6200000000000005"
    assert not luhn_ok("6200000000000006")
    assert failure(v.check_bank_card, "6200000000000006") == ("bank_card", "checksum")
    assert failure(v.check_bank_card, "62000000000") == ("bank_card", "length")
    assert failure(v.check_bank_card, "6200-0000-ABCD-0005") == ("bank_card", "format")


def test_age() -> None:
    leap = date(2000, 2, 29)
    assert v.age_on(leap, date(2018, 2, 28)) == 17
    assert v.age_on(leap, date(2018, 3, 1)) == 18
    assert v.age_on(date(1949, 12, 31), date(2025, 1, 15)) == 75
    assert v.age_on(date(1949, 12, 31), date(2024, 12, 31)) == 75
    assert v.age_on(date(1949, 12, 31), date(2024, 12, 30)) == 74
    on = date(2025, 1, 15)
    assert v.check_age(date(2007, 1, 15), on=on, min_age=18, max_age=60) == 18
    assert failure(v.check_age, date(2007, 1, 16), on=on, min_age=18) == ("id_number", "min-age")
    assert failure(v.check_age, date(1949, 12, 31), on=on, max_age=70) == ("id_number", "max-age")
    assert v.check_age(date(1954, 1, 16), on=on, max_age=70) == 70
    assert failure(v.check_age, date(2026, 1, 1), on=on) == ("id_number", "birth-date")


def test_text() -> None:
    assert v.check_text("  张三 ", field="name", max_length=10) == "张三"
    assert failure(v.check_text, "   ", field="name", max_length=10) == ("name", "required")
    assert failure(v.check_text, "x" * 11, field="name", max_length=10) == ("name", "length")
    assert failure(v.check_text, "a\x00b", field="name", max_length=10) == ("name", "format")
