"""Money as Decimal: parsing, minor units and rounding (pure)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache

from mobilend.core.errors import ValidationFailed

CENT = Decimal("0.01")
ZERO = Decimal("0")

# ISO 4217 minor units for the currencies we expect; others default to 2 decimals.
_MINOR_UNIT_DIGITS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0, "KRW": 0, "IDR": 2}


class RoundingMode(StrEnum):
    HALF_EVEN = "half_even"
    HALF_UP = "half_up"

    @property
    def decimal_mode(self) -> str:
        return ROUND_HALF_EVEN if self is RoundingMode.HALF_EVEN else ROUND_HALF_UP


@lru_cache(maxsize=64)
def minor_unit(currency: str = "CNY") -> Decimal:
    """The smallest unit of a currency: Decimal('0.01') for CNY, Decimal('1') for JPY."""
    digits = _MINOR_UNIT_DIGITS.get(currency.upper(), 2)
    return Decimal(1).scaleb(-digits)


def quantize(
    amount: Decimal, unit: Decimal = CENT, rounding: RoundingMode = RoundingMode.HALF_EVEN
) -> Decimal:
    """Round to a multiple of `unit` (0.01, 1, 5, 100...) with the given rounding mode."""
    if unit <= 0:
        raise ValueError("unit must be positive")
    steps = (amount / unit).quantize(Decimal(1), rounding=rounding.decimal_mode)
    return (steps * unit).quantize(unit if unit < 1 else Decimal(1))


def ceil_to(amount: Decimal, unit: Decimal) -> Decimal:
    """Round up to the next multiple of `unit`."""
    steps = (amount / unit).quantize(Decimal(1), rounding=ROUND_CEILING)
    return (steps * unit).quantize(unit if unit < 1 else Decimal(1))


def parse_amount(value: object, *, field: str, allow_zero: bool = False) -> Decimal:
    """Parse a money amount from str/int/Decimal (never float); reject NaN, infinity, negatives."""
    if isinstance(value, (bool, float)):
        raise ValidationFailed(
            field, "decimal-string", f"{field} must be a decimal string, not {value!r}"
        )
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            field, "decimal", f"{field} is not a decimal number: {value!r}"
        ) from None
    if not amount.is_finite():
        raise ValidationFailed(field, "finite", f"{field} must be a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        rule = "non-negative" if allow_zero else "positive"
        raise ValidationFailed(field, rule, f"{field} must be {rule}, got {amount}")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationFailed(field, "max-2-decimals", f"{field} has more than 2 decimal places")
    return amount
