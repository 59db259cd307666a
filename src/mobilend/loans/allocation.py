"""The repayment waterfall: split a payment across what is owed (pure).

A payment pays only installments that are due (due date on or before the business date),
oldest first. The waterfall's `order` says which components are paid first (by default
penalty interest 罚息, then fees, then interest, then principal) and its `strategy` says
how the order and the installments combine:

- HORIZONTAL: component by component across all eligible installments -- every penalty
  (oldest installment first), then every fee, then every interest, then every principal.
- VERTICAL: installment by installment -- the oldest installment is paid in full, in
  component order, before the next one gets anything.

Whatever is left is `unallocated`: the service keeps it as the borrower's credit balance.
Amounts are never rounded here: the lines and the remainder add up to the payment exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import ZERO


class Component(StrEnum):
    PENALTY = "penalty"  # 罚息 penalty interest
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class Strategy(StrEnum):
    HORIZONTAL = "horizontal"  # component by component across installments
    VERTICAL = "vertical"  # installment by installment


_COMPONENT_NAMES = frozenset(c.value for c in Component)
DEFAULT_ORDER = (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL)


@dataclass(frozen=True)
class Waterfall:
    """Which component is paid first, and whether to sweep across or down installments."""

    order: tuple[Component, ...] = DEFAULT_ORDER
    strategy: Strategy = Strategy.HORIZONTAL

    def __post_init__(self) -> None:
        if len(set(self.order)) != len(self.order):
            raise ValidationFailed(
                "waterfall", "duplicate-component", f"waterfall repeats a component: {self.text}"
            )
        missing = [c.value for c in Component if c not in self.order]
        if missing:
            raise ValidationFailed(
                "waterfall", "missing-component", f"waterfall lacks {', '.join(missing)}"
            )

    @classmethod
    def parse(cls, text: str, strategy: str = Strategy.HORIZONTAL) -> Waterfall:
        """Parse 'penalty,fee,interest,principal' and a strategy name ('horizontal')."""
        names = [part.strip().lower() for part in text.split(",")]
        unknown = [name for name in names if name not in _COMPONENT_NAMES]
        if unknown:
            raise ValidationFailed(
                "waterfall", "unknown-component", f"unknown waterfall component(s): {unknown}"
            )
        key = strategy.strip().lower()
        if key not in {s.value for s in Strategy}:
            raise ValidationFailed(
                "waterfall",
                "unknown-strategy",
                f"unknown strategy {strategy!r}: use horizontal or vertical",
            )
        return cls(tuple(Component(name) for name in names), Strategy(key))

    @property
    def text(self) -> str:
        """The order as stored in product settings: 'penalty,fee,interest,principal'."""
        return ",".join(c.value for c in self.order)


@dataclass(frozen=True)
class Due:
    """What is still owed on one installment, by component."""

    installment: int
    due_date: date
    penalty: Decimal
    fee: Decimal
    interest: Decimal
    principal: Decimal

    def owed(self, component: Component) -> Decimal:
        amount: Decimal = getattr(self, component.value)
        return amount


@dataclass(frozen=True)
class AllocationLine:
    installment: int
    component: Component
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    """Lines in the order they were paid, and what was left over (the overpayment)."""

    lines: tuple[AllocationLine, ...]
    unallocated: Decimal

    def total(self, component: Component) -> Decimal:
        return sum((line.amount for line in self.lines if line.component is component), ZERO)

    @property
    def applied(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def allocate(
    amount: Decimal, dues: Sequence[Due], waterfall: Waterfall, *, as_of: date
) -> Allocation:
    """Split `amount` over the installments due on or before `as_of`, oldest first.

    Exact: sum(lines) + unallocated == amount; no line exceeds what was owed; no zero lines.
    """
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed("amount", "positive", f"amount must be positive, got {amount}")
    for due in dues:
        if any(not due.owed(c).is_finite() or due.owed(c) < 0 for c in Component):
            raise ValidationFailed(
                "dues", "non-negative", f"installment {due.installment} owes a negative amount"
            )
    eligible = sorted(
        (due for due in dues if due.due_date <= as_of),
        key=lambda due: (due.due_date, due.installment),
    )
    if waterfall.strategy is Strategy.HORIZONTAL:
        steps = [(due, c) for c in waterfall.order for due in eligible]
    else:
        steps = [(due, c) for due in eligible for c in waterfall.order]

    remaining = amount
    lines: list[AllocationLine] = []
    for due, component in steps:
        if remaining == 0:
            break
        paid = min(remaining, due.owed(component))
        if paid > 0:
            lines.append(AllocationLine(due.installment, component, paid))
            remaining -= paid
    return Allocation(tuple(lines), remaining)
