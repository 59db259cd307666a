"""Grading a used phone's condition, and the storage and carrier-lock factors (pure).

A `Condition` is what an inspection records. Each part gets a sub-grade and the device's grade
is the worst of them (docs/collateral-valuation.md has the full table):

- screen: flawless -> mint, minor_wear -> excellent, visible_wear -> good, cracked -> poor
- body: flawless -> mint, minor_wear -> excellent, visible_wear -> good, dented -> fair,
  cracked (back glass or frame) -> poor
- battery health %: >= 90 mint, >= 85 excellent, >= 80 good, >= 70 fair, below 70 poor
- function checks (FUNCTION_CHECKS): none failed -> mint, 1 or 2 failed -> fair, 3+ -> poor

Grades and multipliers follow the `aftermarket` convention (FACTS.md): mint 1.00,
excellent 0.90, good 0.75, fair 0.60, poor 0.40. A carrier lock is not part of the grade:
it is a separate factor, CARRIER_LOCK_FACTOR (0.85), applied to every valuation basis.

The storage factor is a variant's launch price over the base (smallest) variant's launch price,
rounded to 6 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

from mobilend.collateral.catalog import DeviceModel
from mobilend.core.errors import ValidationFailed

GRADES = ("mint", "excellent", "good", "fair", "poor")  # best first
GRADE_MULTIPLIERS: Mapping[str, Decimal] = MappingProxyType(
    {
        "mint": Decimal("1.00"),
        "excellent": Decimal("0.90"),
        "good": Decimal("0.75"),
        "fair": Decimal("0.60"),
        "poor": Decimal("0.40"),
    }
)
CARRIER_LOCK_FACTOR = Decimal("0.85")
UNLOCKED_FACTOR = Decimal("1")
FACTOR_STEP = Decimal("0.000001")  # storage factors carry 6 decimals

SCREEN_GRADES: Mapping[str, str] = MappingProxyType(
    {"flawless": "mint", "minor_wear": "excellent", "visible_wear": "good", "cracked": "poor"}
)
BODY_GRADES: Mapping[str, str] = MappingProxyType(
    {
        "flawless": "mint",
        "minor_wear": "excellent",
        "visible_wear": "good",
        "dented": "fair",
        "cracked": "poor",
    }
)
# Lowest battery health (percent of design capacity) for each grade, best first.
BATTERY_FLOORS = ((90, "mint"), (85, "excellent"), (80, "good"), (70, "fair"))
FUNCTION_CHECKS = frozenset(
    {
        "camera",
        "speaker",
        "microphone",
        "face_id",
        "touch_id",
        "wifi",
        "cellular",
        "charging",
        "buttons",
    }
)
FAILED_CHECKS_POOR = 3  # this many failed checks or more grade the device poor


@dataclass(frozen=True, slots=True)
class Condition:
    screen: str  # a key of SCREEN_GRADES
    body: str  # a key of BODY_GRADES
    battery_health_pct: int  # 0..100
    failed_checks: tuple[str, ...] = ()  # names from FUNCTION_CHECKS
    carrier_locked: bool = False

    def __post_init__(self) -> None:
        if self.screen not in SCREEN_GRADES:
            raise ValidationFailed(
                "screen", "unknown-condition", f"screen must be one of {', '.join(SCREEN_GRADES)}"
            )
        if self.body not in BODY_GRADES:
            raise ValidationFailed(
                "body", "unknown-condition", f"body must be one of {', '.join(BODY_GRADES)}"
            )
        battery = self.battery_health_pct
        if isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100:
            raise ValidationFailed(
                "battery_health_pct", "range", "battery_health_pct must be a whole 0..100"
            )
        unknown = sorted(set(self.failed_checks) - FUNCTION_CHECKS)
        if unknown:
            raise ValidationFailed(
                "failed_checks", "unknown-check", f"unknown function check(s): {unknown}"
            )
        if len(set(self.failed_checks)) != len(self.failed_checks):
            raise ValidationFailed("failed_checks", "duplicate-check", "a check is listed twice")
        if not isinstance(self.carrier_locked, bool):
            raise ValidationFailed("carrier_locked", "boolean", "carrier_locked must be a bool")


@dataclass(frozen=True, slots=True)
class Grade:
    grade: str  # one of GRADES
    multiplier: Decimal
    reasons: tuple[str, ...]  # one line per part that graded below mint, worst grade first


def battery_grade(health_pct: int) -> str:
    for floor, grade in BATTERY_FLOORS:
        if health_pct >= floor:
            return grade
    return "poor"


def checks_grade(failed: int) -> str:
    if failed == 0:
        return "mint"
    return "poor" if failed >= FAILED_CHECKS_POOR else "fair"


def grade(condition: Condition) -> Grade:
    """The worst of the screen, body, battery and function-check sub-grades."""
    parts = [
        (SCREEN_GRADES[condition.screen], f"screen {condition.screen}"),
        (BODY_GRADES[condition.body], f"body {condition.body}"),
        (battery_grade(condition.battery_health_pct), f"battery {condition.battery_health_pct}%"),
        (
            checks_grade(len(condition.failed_checks)),
            f"failed checks: {', '.join(sorted(condition.failed_checks))}",
        ),
    ]
    below_mint = sorted(
        (part for part in parts if part[0] != "mint"), key=lambda part: -GRADES.index(part[0])
    )
    worst = below_mint[0][0] if below_mint else "mint"
    reasons = tuple(f"{label} -> {sub}" for sub, label in below_mint)
    return Grade(worst, GRADE_MULTIPLIERS[worst], reasons)


def grade_multiplier(name: str) -> Decimal:
    """The multiplier of a grade name, or ValidationFailed("grade", "unknown-grade")."""
    if name not in GRADE_MULTIPLIERS:
        raise ValidationFailed(
            "grade", "unknown-grade", f"grade must be one of {', '.join(GRADES)}"
        )
    return GRADE_MULTIPLIERS[name]


def carrier_factor(condition: Condition) -> Decimal:
    """CARRIER_LOCK_FACTOR for a carrier-locked device, else 1."""
    return CARRIER_LOCK_FACTOR if condition.carrier_locked else UNLOCKED_FACTOR


def storage_factor(model: DeviceModel, storage_gb: int) -> Decimal:
    """The variant's launch price over the base variant's, to 6 decimals (1 for the base)."""
    variant = model.variant(storage_gb)
    ratio = variant.launch_price / model.base_variant.launch_price
    return ratio.quantize(FACTOR_STEP, rounding=ROUND_HALF_EVEN)
