"""Identity fields checked with published algorithms: resident ID (GB 11643), unified social
credit code (GB 32100), phone numbers (libphonenumber), bank cards (Luhn), and age limits.

Pure: plain values in, canonical values out. Every failure is a ValidationFailed naming the
field and a stable rule (`length`, `format`, `checksum`, `birth-date`, `region`, ...).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal

import phonenumbers
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from mobilend.core.errors import ValidationFailed

Gender = Literal["male", "female"]
PHONE_PUNCTUATION = frozenset("+()-. ")
MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True, repr=False)
class IdNumber:
    """A valid resident ID number and what it says: birth date, gender, region of issue."""

    number: str
    birth_date: date
    gender: Gender
    region_code: str

    def __repr__(self) -> str:  # never print the number
        return f"IdNumber(birth_date={self.birth_date}, gender={self.gender})"


def _compact(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).replace("-", "").upper()


def parse_id_number(value: str, *, today: date | None = None, field: str = "id_number") -> IdNumber:
    """Check a resident ID (居民身份证号码): 18 characters, check digit, birth date, region.

    The 17th digit is odd for men and even for women. With `today`, a birth date after it is
    refused too.
    """
    number = _compact(value)
    if len(number) != 18:
        raise ValidationFailed(field, "length", "a resident ID number has 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationFailed(field, "format", "17 digits and a digit or X are expected")
    if number[17] != ric.calc_check_digit(number):
        raise ValidationFailed(field, "checksum", "the check digit does not match")
    try:
        birth = ric.get_birth_date(number)
    except InvalidComponent:
        raise ValidationFailed(field, "birth-date", "the birth date is not a date") from None
    if birth.year < 1900 or (today is not None and birth > today):
        raise ValidationFailed(field, "birth-date", "the birth date is out of range")
    try:
        ric.get_birth_place(number)
    except (InvalidComponent, ValidationError):
        raise ValidationFailed(field, "region", "the region code is not known") from None
    gender: Gender = "male" if int(number[16]) % 2 else "female"
    return IdNumber(number, birth, gender, number[:6])


def check_uscc(value: str, *, field: str = "uscc") -> str:
    """A unified social credit code (统一社会信用代码), 18 characters with a check character."""
    rules: list[tuple[type[ValidationError], str]] = [
        (InvalidLength, "length"),
        (InvalidFormat, "format"),
        (InvalidChecksum, "checksum"),
        (InvalidComponent, "format"),
    ]
    try:
        return str(uscc.validate(_compact(value)))
    except ValidationError as exc:
        rule = next((r for kind, r in rules if isinstance(exc, kind)), "format")
        raise ValidationFailed(
            field, rule, f"not a valid unified social credit code ({rule})"
        ) from None


def uscc_region(code: str) -> str:
    """Characters 3 to 8 of a unified social credit code: the administrative division."""
    return code[2:8]


def normalize_phone(
    value: str, *, region: str = "CN", mobile_only: bool = True, field: str = "phone"
) -> str:
    """A valid phone number in E.164 (+8613812345678); national numbers read as `region`.
    Only digits and + ( ) - . and spaces are accepted: no letters (1-800-FLOWERS), no extension.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    if not text or any(not (ch.isdigit() or ch in PHONE_PUNCTUATION) for ch in text):
        raise ValidationFailed(field, "format", "a phone number has digits, + ( ) - . only")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed(field, "format", "not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(field, "invalid", "not a valid phone number")
    if mobile_only and phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise ValidationFailed(field, "not-mobile", "a mobile phone number is required")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_bank_card(value: str, *, field: str = "bank_card") -> str:
    """A payment card number: 12 to 19 digits with a valid Luhn check digit."""
    number = _compact(value)
    if not number.isdigit():
        raise ValidationFailed(field, "format", "a card number has digits only")
    if not 12 <= len(number) <= 19:
        raise ValidationFailed(field, "length", "a card number has 12 to 19 digits")
    if not luhn.is_valid(number):
        raise ValidationFailed(field, "checksum", "the card number's check digit does not match")
    return number


def age_on(birth_date: date, on: date) -> int:
    """Whole years completed on `on` (someone born on 29 February turns a year older on 1 March
    in common years)."""
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


def check_age(
    birth_date: date,
    *,
    on: date,
    min_age: int | None = None,
    max_age: int | None = None,
    field: str = "id_number",
) -> int:
    """The age on `on`, refused below `min_age` or above `max_age` (both inclusive limits)."""
    if birth_date > on:
        raise ValidationFailed(field, "birth-date", "the birth date is after the business date")
    age = age_on(birth_date, on)
    if min_age is not None and age < min_age:
        raise ValidationFailed(field, "min-age", f"the borrower must be at least {min_age}")
    if max_age is not None and age > max_age:
        raise ValidationFailed(field, "max-age", f"the borrower must be at most {max_age}")
    return age


def check_text(value: str, *, field: str, max_length: int) -> str:
    """Free text such as a name or an address: trimmed, not empty, no control characters."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValidationFailed(field, "required", f"{field} must not be empty")
    if len(text) > max_length:
        raise ValidationFailed(field, "length", f"{field} has at most {max_length} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise ValidationFailed(field, "format", f"{field} has control characters")
    return text
