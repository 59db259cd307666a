"""Grading: sub-grades, worst-of, multipliers, carrier lock, storage factor, validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mobilend.collateral.catalog import seed_catalog
from mobilend.collateral.grading import (
    Condition,
    Grade,
    carrier_factor,
    grade,
    grade_multiplier,
    storage_factor,
)
from mobilend.core.errors import ValidationFailed

D = Decimal


def cond(**changes: object) -> Condition:
    base: dict[str, object] = {"screen": "flawless", "body": "flawless", "battery_health_pct": 95}
    base.update(changes)
    return Condition(**base)  # type: ignore[arg-type]


def test_flawless_device_is_mint() -> None:
    assert grade(cond()) == Grade("mint", D("1.00"), ())


@pytest.mark.parametrize(
    ("battery", "expected", "multiplier"),
    [
        (100, "mint", "1.00"),
        (90, "mint", "1.00"),  # floors are inclusive
        (89, "excellent", "0.90"),
        (85, "excellent", "0.90"),
        (84, "good", "0.75"),
        (80, "good", "0.75"),
        (79, "fair", "0.60"),
        (70, "fair", "0.60"),
        (69, "poor", "0.40"),
        (0, "poor", "0.40"),
    ],
)
def test_battery_bands(battery: int, expected: str, multiplier: str) -> None:
    result = grade(cond(battery_health_pct=battery))
    assert (result.grade, result.multiplier) == (expected, D(multiplier))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"screen": "minor_wear"}, "excellent"),
        ({"screen": "visible_wear"}, "good"),
        ({"screen": "cracked"}, "poor"),
        ({"body": "minor_wear"}, "excellent"),
        ({"body": "visible_wear"}, "good"),
        ({"body": "dented"}, "fair"),
        ({"body": "cracked"}, "poor"),
        ({"failed_checks": ("camera",)}, "fair"),
        ({"failed_checks": ("camera", "wifi")}, "fair"),
        ({"failed_checks": ("camera", "wifi", "face_id")}, "poor"),
    ],
)
def test_each_part_on_its_own(changes: dict[str, object], expected: str) -> None:
    assert grade(cond(**changes)).grade == expected


def test_grade_is_the_worst_part_and_reasons_list_worst_first() -> None:
    # screen minor_wear -> excellent, body visible_wear -> good, battery 88 -> excellent:
    # the worst is good (0.75); the two excellents keep their inspection order.
    result = grade(cond(screen="minor_wear", body="visible_wear", battery_health_pct=88))
    assert result == Grade(
        "good",
        D("0.75"),
        (
            "body visible_wear -> good",
            "screen minor_wear -> excellent",
            "battery 88% -> excellent",
        ),
    )


def test_cracked_screen_is_poor_whatever_else() -> None:
    result = grade(cond(screen="cracked", battery_health_pct=100))
    assert result == Grade("poor", D("0.40"), ("screen cracked -> poor",))


def test_failed_checks_reason_lists_them_sorted() -> None:
    result = grade(cond(failed_checks=("wifi", "camera")))
    assert result.reasons == ("failed checks: camera, wifi -> fair",)


def test_carrier_lock_is_a_separate_factor_not_a_grade() -> None:
    locked = cond(carrier_locked=True)
    assert grade(locked).grade == "mint"
    assert carrier_factor(locked) == D("0.85")
    assert carrier_factor(cond()) == D("1")


def test_grade_multiplier_by_name() -> None:
    assert grade_multiplier("good") == D("0.75")
    with pytest.raises(ValidationFailed) as exc:
        grade_multiplier("like new")
    assert (exc.value.field, exc.value.rule) == ("grade", "unknown-grade")


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"screen": "shattered"}, "screen", "unknown-condition"),
        ({"body": "dented-ish"}, "body", "unknown-condition"),
        ({"screen": "dented"}, "screen", "unknown-condition"),  # dented is a body word only
        ({"battery_health_pct": 101}, "battery_health_pct", "range"),
        ({"battery_health_pct": -1}, "battery_health_pct", "range"),
        ({"battery_health_pct": True}, "battery_health_pct", "range"),
        ({"battery_health_pct": 85.5}, "battery_health_pct", "range"),
        ({"failed_checks": ("nfc",)}, "failed_checks", "unknown-check"),
        ({"failed_checks": ("camera", "camera")}, "failed_checks", "duplicate-check"),
        ({"carrier_locked": "yes"}, "carrier_locked", "boolean"),
    ],
)
def test_bad_conditions_name_the_field(changes: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        cond(**changes)
    assert (exc.value.field, exc.value.rule) == (field, rule)


def test_storage_factor_is_variant_over_base_to_six_decimals() -> None:
    iphone_15 = next(m for m in seed_catalog() if m.key == "apple-iphone-15")
    # 128 GB is the base: 5999 / 5999 = 1.
    assert storage_factor(iphone_15, 128) == D("1.000000")
    # 6999 / 5999: 5999 x 1.166694 = 6998.997306, remainder 0.002694 / 5999 = 0.00000045
    # -> 1.16669445..., 7th decimal 4 -> 1.166694.
    assert storage_factor(iphone_15, 256) == D("1.166694")
    # 8999 / 5999: 5999 x 1.5 = 8998.5, remainder 0.5 / 5999 = 0.0000833 -> 1.500083.
    assert storage_factor(iphone_15, 512) == D("1.500083")


def test_unknown_storage_is_an_unknown_variant() -> None:
    iphone_15 = next(m for m in seed_catalog() if m.key == "apple-iphone-15")
    with pytest.raises(ValidationFailed) as exc:
        storage_factor(iphone_15, 64)
    assert (exc.value.field, exc.value.rule) == ("storage_gb", "unknown-variant")
