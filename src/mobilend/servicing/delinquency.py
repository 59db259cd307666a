"""Days past due 逾期天数, overdue amounts, DPD buckets, installment status and roll labels (pure).

Definitions (docs/delinquency.md has the worked examples):

- An installment is *unpaid* while any component (principal, interest, fee, penalty) has
  something left to pay. It is *overdue* on a business date when it is unpaid and its due date
  is BEFORE that date: the due date itself is still on time, overdue starts the day after.
- Days past due (DPD) = business_date - due date of the oldest overdue installment, in calendar
  days; 0 when nothing is overdue. So an installment due 2024-01-31 and not paid has DPD 0 on
  01-31, 1 on 02-01 and 30 on 03-01 (2024 is a leap year).
- Overdue amounts are the unpaid components of the overdue installments; an installment that
  falls due today is not in them.
- Status of one installment on a business date: "paid" when nothing is left to pay (whatever
  the date), else "pending" before the due date, "due" on it and "overdue" after it.
- Buckets split DPD into contiguous inclusive ranges. The default is the common M-convention
  M0 = current (DPD 0), M1 = 1-30, M2 = 31-60, M3+ = 61 and more; a product sets its own
  upper bounds (and names) with `BucketScheme.from_bounds`.
- `roll(previous, current)` labels the move of one loan between two snapshots ("M1->M2") for
  roll rates: forward (worse), stay, back (better) or cure (back to the first bucket).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import ZERO

_COMPONENTS = ("principal", "interest", "fee", "penalty")


@dataclass(frozen=True, slots=True)
class ComponentAmounts:
    """An amount per component of an installment."""

    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty

    def __add__(self, other: ComponentAmounts) -> ComponentAmounts:
        return ComponentAmounts(
            self.principal + other.principal,
            self.interest + other.interest,
            self.fee + other.fee,
            self.penalty + other.penalty,
        )


@dataclass(frozen=True, slots=True)
class InstallmentDue:
    """One installment as the ledger sees it: what was due and what was paid, by component.

    penalty_due is the penalty interest 罚息 charged on the installment so far. Paid amounts
    never exceed what was due (an overpayment is the borrower's credit balance, not here).
    """

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal = ZERO
    penalty_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    penalty_paid: Decimal = ZERO

    def __post_init__(self) -> None:
        if not isinstance(self.number, int) or isinstance(self.number, bool) or self.number < 1:
            raise ValidationFailed("number", "positive-int", "number must be a whole number >= 1")
        for name in _COMPONENTS:
            due: Decimal = getattr(self, f"{name}_due")
            paid: Decimal = getattr(self, f"{name}_paid")
            for label, value in ((f"{name}_due", due), (f"{name}_paid", paid)):
                if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                    raise ValidationFailed(
                        label, "non-negative", f"{label} must be a Decimal >= 0, got {value!r}"
                    )
            if paid > due:
                raise ValidationFailed(
                    f"{name}_paid",
                    "not-above-due",
                    f"installment {self.number}: {name}_paid {paid} exceeds {name}_due {due}",
                )

    @property
    def unpaid(self) -> ComponentAmounts:
        return ComponentAmounts(
            self.principal_due - self.principal_paid,
            self.interest_due - self.interest_paid,
            self.fee_due - self.fee_paid,
            self.penalty_due - self.penalty_paid,
        )

    @property
    def is_paid(self) -> bool:
        return self.unpaid.total == 0

    def is_overdue(self, business_date: date) -> bool:
        """Unpaid and due BEFORE business_date (on the due date itself it is not yet overdue)."""
        return not self.is_paid and self.due_date < business_date


class InstallmentStatus(StrEnum):
    PENDING = "pending"  # not yet due
    DUE = "due"  # due today, not fully paid
    OVERDUE = "overdue"  # due before today, not fully paid
    PAID = "paid"  # nothing left to pay


def installment_status(installment: InstallmentDue, business_date: date) -> InstallmentStatus:
    """The installment's status at the end of business_date."""
    if installment.is_paid:
        return InstallmentStatus.PAID
    if business_date < installment.due_date:
        return InstallmentStatus.PENDING
    if business_date == installment.due_date:
        return InstallmentStatus.DUE
    return InstallmentStatus.OVERDUE


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status move between two closes, with the event name the daily close records."""

    previous: InstallmentStatus
    current: InstallmentStatus
    event: str  # "fell_due" | "became_overdue" | "paid" | "reopened"


_S = InstallmentStatus
# Allowed moves. pending -> overdue happens when a close covers the due date and the day after
# at once (catch-up after missed closes); paid -> anything is a reversed payment.
_EVENTS: dict[tuple[InstallmentStatus, InstallmentStatus], str] = {
    (_S.PENDING, _S.DUE): "fell_due",
    (_S.PENDING, _S.OVERDUE): "became_overdue",
    (_S.DUE, _S.OVERDUE): "became_overdue",
    (_S.PENDING, _S.PAID): "paid",
    (_S.DUE, _S.PAID): "paid",
    (_S.OVERDUE, _S.PAID): "paid",
    (_S.PAID, _S.PENDING): "reopened",
    (_S.PAID, _S.DUE): "reopened",
    (_S.PAID, _S.OVERDUE): "reopened",
}


def status_change(previous: InstallmentStatus, current: InstallmentStatus) -> StatusChange | None:
    """The change from previous to current status; None if unchanged.

    Moves back in time (overdue -> due/pending, due -> pending) are refused: they mean the
    business date went backwards or the schedule changed, which is a reschedule, not a move.
    """
    if previous is current:
        return None
    event = _EVENTS.get((previous, current))
    if event is None:
        raise ValidationFailed(
            "status",
            "transition",
            f"an installment cannot go from {previous.value} to {current.value}",
        )
    return StatusChange(previous, current, event)


@dataclass(frozen=True, slots=True)
class Delinquency:
    """A loan's arrears on one business date."""

    business_date: date
    days_past_due: int
    oldest_overdue_due_date: date | None
    overdue: ComponentAmounts
    overdue_installments: int

    @property
    def is_current(self) -> bool:
        return self.days_past_due == 0


def _checked(installments: Iterable[InstallmentDue]) -> tuple[InstallmentDue, ...]:
    items = tuple(installments)
    numbers = [item.number for item in items]
    if len(set(numbers)) != len(numbers):
        raise ValidationFailed("installments", "unique-number", "installment numbers repeat")
    return items


def delinquency(installments: Iterable[InstallmentDue], business_date: date) -> Delinquency:
    """DPD, overdue amounts by component and the number of overdue installments."""
    overdue = [item for item in _checked(installments) if item.is_overdue(business_date)]
    amounts = sum((item.unpaid for item in overdue), ComponentAmounts())
    if not overdue:
        return Delinquency(business_date, 0, None, amounts, 0)
    oldest = min(item.due_date for item in overdue)
    return Delinquency(business_date, (business_date - oldest).days, oldest, amounts, len(overdue))


def days_past_due(installments: Iterable[InstallmentDue], business_date: date) -> int:
    """Days since the oldest overdue installment fell due; 0 when the loan is current."""
    return delinquency(installments, business_date).days_past_due


# --- buckets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """DPD from min_dpd to max_dpd, both inclusive; max_dpd None means no upper end."""

    name: str
    min_dpd: int
    max_dpd: int | None

    def contains(self, dpd: int) -> bool:
        return self.min_dpd <= dpd and (self.max_dpd is None or dpd <= self.max_dpd)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_dpd(dpd: int) -> None:
    if not _is_int(dpd) or dpd < 0:
        raise ValidationFailed(
            "days_past_due", "non-negative-int", "DPD must be a whole number >= 0"
        )


@dataclass(frozen=True)
class BucketScheme:
    """Contiguous buckets from DPD 0 upwards; only the last one is open-ended."""

    buckets: tuple[Bucket, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        buckets = self.buckets
        if not buckets:
            raise ValidationFailed("buckets", "non-empty", "a bucket scheme needs a bucket")
        names = [bucket.name for bucket in buckets]
        if any(not isinstance(name, str) or not name.strip() for name in names):
            raise ValidationFailed("buckets", "name", "every bucket needs a name")
        if len(set(names)) != len(names):
            raise ValidationFailed("buckets", "unique-name", f"bucket names repeat: {names}")
        expected_min = 0
        for position, bucket in enumerate(buckets):
            last = position == len(buckets) - 1
            if not _is_int(bucket.min_dpd) or bucket.min_dpd != expected_min:
                raise ValidationFailed(
                    "buckets",
                    "contiguous",
                    f"bucket {bucket.name} must start at DPD {expected_min}",
                )
            if (bucket.max_dpd is None) != last:
                raise ValidationFailed(
                    "buckets", "open-last", "the last bucket, and only it, has no upper bound"
                )
            if bucket.max_dpd is not None:
                if not _is_int(bucket.max_dpd) or bucket.max_dpd < bucket.min_dpd:
                    raise ValidationFailed(
                        "buckets", "increasing", f"bucket {bucket.name} ends before it starts"
                    )
                expected_min = bucket.max_dpd + 1
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(names)})

    @classmethod
    def from_bounds(
        cls, upper_bounds: Sequence[int], names: Sequence[str] | None = None
    ) -> BucketScheme:
        """Buckets ending at each upper bound, plus an open last one.

        from_bounds((0, 30, 60)) is M0 = 0, M1 = 1-30, M2 = 31-60, M3+ = 61+. Default names are
        M0, M1, ... and "M{n}+" for the open bucket; `names` needs len(upper_bounds) + 1 names.
        """
        bounds = list(upper_bounds)
        if any(not _is_int(b) for b in bounds) or any(b <= a for a, b in pairwise([-1, *bounds])):
            raise ValidationFailed(
                "upper_bounds", "increasing", "upper bounds must be increasing whole numbers >= 0"
            )
        if names is None:
            names = [f"M{i}" for i in range(len(bounds))] + [f"M{len(bounds)}+"]
        if len(names) != len(bounds) + 1:
            raise ValidationFailed(
                "names", "count", f"{len(bounds)} upper bounds need {len(bounds) + 1} names"
            )
        lows = [0] + [b + 1 for b in bounds]
        highs: list[int | None] = [*bounds, None]
        return cls(tuple(Bucket(n, lo, hi) for n, lo, hi in zip(names, lows, highs, strict=True)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(bucket.name for bucket in self.buckets)

    def index(self, name: str) -> int:
        """Position of a bucket by name (0 is the current bucket)."""
        position = self._index.get(name)
        if position is None:
            raise ValidationFailed("bucket", "unknown-bucket", f"unknown bucket {name!r}")
        return position

    def bucket_for(self, dpd: int) -> Bucket:
        _check_dpd(dpd)
        return next(bucket for bucket in self.buckets if bucket.contains(dpd))


DEFAULT_BUCKETS = BucketScheme.from_bounds((0, 30, 60))  # M0 | M1 1-30 | M2 31-60 | M3+ 61+


def bucket_for(dpd: int, scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """The name of the bucket DPD falls in."""
    return scheme.bucket_for(dpd).name


# --- roll labels -----------------------------------------------------------------------------


class RollDirection(StrEnum):
    FORWARD = "forward"  # into a worse bucket (roll forward)
    STAY = "stay"
    BACK = "back"  # into a better bucket, still delinquent
    CURE = "cure"  # back to the first (current) bucket from a worse one


@dataclass(frozen=True, slots=True)
class Roll:
    previous: str
    current: str
    direction: RollDirection
    steps: int  # current index - previous index: +1 is one bucket worse

    @property
    def label(self) -> str:
        return f"{self.previous}->{self.current}"


def roll(previous: str, current: str, scheme: BucketScheme = DEFAULT_BUCKETS) -> Roll:
    """The move of one loan from `previous` to `current` bucket between two snapshots."""
    before, after = scheme.index(previous), scheme.index(current)
    if after > before:
        direction = RollDirection.FORWARD
    elif after == before:
        direction = RollDirection.STAY
    elif after == 0:
        direction = RollDirection.CURE
    else:
        direction = RollDirection.BACK
    return Roll(previous, current, direction, after - before)
