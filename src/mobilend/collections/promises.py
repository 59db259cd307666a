"""Promises to pay, what to do once they break, and restructuring offers (pure).

A promise to pay (承诺还款) is the borrower's word to pay `amount` by `due_date`, recorded by
an agent on `made_on`. `evaluate` grades it against the payments received:

- payments count if made from `made_on` to the deadline, `due_date + grace_days`, inclusive;
- "kept" as soon as the counted payments reach the amount (even before the due date);
- "pending" while short and the deadline has not passed (the deadline day itself included);
- after the deadline, "partially_kept" if something was paid, else "broken".

`after_broken` suggests the escalation once promises break: the next collection queue after
`next_queue_after` broken promises, legal review after `legal_after`. A partly kept promise
counts as broken unless the policy says otherwise.

`check_restructuring` validates a restructuring offer (term extension, reduced installment)
against the product's limits; it changes nothing: the loan engine applies an accepted offer.
Offers that are malformed or beyond the limits raise ValidationFailed (422); a loan whose state
forbids restructuring (restructured too often, not yet past due enough) raises Conflict (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.core.money import ZERO, parse_amount

STATUSES = ("pending", "kept", "partially_kept", "broken")
ESCALATIONS = ("none", "next_queue", "legal")


def _check_int(field: str, value: object, low: int, high: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ValidationFailed(field, "range", f"{field} must be a whole number {low}-{high}")


@dataclass(frozen=True)
class PromisePolicy:
    """Settings for grading promises and escalating broken ones (product or lender settings)."""

    grace_days: int = 2
    next_queue_after: int = 1
    legal_after: int = 3
    partial_counts_as_broken: bool = True
    reset_on_kept: bool = False  # count only the broken promises since the last kept one

    def __post_init__(self) -> None:
        _check_int("grace_days", self.grace_days, 0, 30)
        _check_int("next_queue_after", self.next_queue_after, 1, 100)
        _check_int("legal_after", self.legal_after, self.next_queue_after, 100)
        for name in ("partial_counts_as_broken", "reset_on_kept"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationFailed(name, "boolean", f"{name} is true or false")


@dataclass(frozen=True)
class PromiseToPay:
    """The borrower promised on `made_on` to pay `amount` by `due_date`."""

    amount: Decimal
    due_date: date
    made_on: date

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", parse_amount(self.amount, field="amount"))
        if self.due_date < self.made_on:
            raise ValidationFailed("due_date", "not-before-made-on", "a promise falls due later")


@dataclass(frozen=True)
class PromiseEvaluation:
    """A promise's status on a day, the payments counted towards it and what is still short."""

    status: str
    paid: Decimal
    shortfall: Decimal
    deadline: date
    kept_on: date | None = None  # the day the counted payments reached the amount


@dataclass(frozen=True)
class Escalation:
    """The suggested next step after the loan's promises so far."""

    action: str  # one of ESCALATIONS
    broken: int
    reason: str


def evaluate(
    promise: PromiseToPay,
    payments_since: Sequence[tuple[date, Decimal]],
    today: date,
    *,
    policy: PromisePolicy = PromisePolicy(),
) -> PromiseEvaluation:
    """Grade `promise` on `today` from the loan's payments (date, amount).

    Payments before `made_on` (known when the promise was made) and after the deadline are not
    counted; a payment dated after `today` is an error.
    """
    if today < promise.made_on:
        raise ValidationFailed("today", "not-before-made-on", "the promise is not made yet")
    deadline = promise.due_date + timedelta(days=policy.grace_days)
    paid, kept_on = ZERO, None
    for paid_on, value in sorted(_payments(payments_since, today)):
        if promise.made_on <= paid_on <= deadline:
            paid += value
            if kept_on is None and paid >= promise.amount:
                kept_on = paid_on
    shortfall = max(promise.amount - paid, ZERO)
    if kept_on is not None:
        status = "kept"
    elif today <= deadline:
        status = "pending"
    else:
        status = "partially_kept" if paid > 0 else "broken"
    return PromiseEvaluation(status, paid, shortfall, deadline, kept_on)


def after_broken(statuses: Sequence[str], *, policy: PromisePolicy = PromisePolicy()) -> Escalation:
    """Suggest the escalation from the loan's promise statuses, oldest first."""
    broken = 0
    for status in statuses:
        if status not in STATUSES:
            raise ValidationFailed("statuses", "one-of", f"a status is one of {STATUSES}")
        if status == "kept" and policy.reset_on_kept:
            broken = 0
        elif status == "broken" or (status == "partially_kept" and policy.partial_counts_as_broken):
            broken += 1
    if broken >= policy.legal_after:
        return Escalation("legal", broken, f"{broken} broken promises >= {policy.legal_after}")
    if broken >= policy.next_queue_after:
        reason = f"{broken} broken promises >= {policy.next_queue_after}"
        return Escalation("next_queue", broken, reason)
    return Escalation("none", broken, "no broken promise counts")


@dataclass(frozen=True)
class RestructuringLimits:
    """What the product allows a restructuring to do."""

    max_extension_months: int = 6
    min_installment_share: Decimal = Decimal("0.50")  # new installment >= this x current
    min_installment: Decimal = ZERO
    max_term_months: int | None = None  # elapsed + remaining + extension
    max_restructurings: int = 1
    min_days_past_due: int = 0

    def __post_init__(self) -> None:
        _check_int("max_extension_months", self.max_extension_months, 0, 120)
        share = self.min_installment_share
        if not isinstance(share, Decimal) or not share.is_finite() or not 0 <= share <= 1:
            raise ValidationFailed(
                "min_installment_share", "range", "min_installment_share is a Decimal 0-1"
            )
        parse_amount(self.min_installment, field="min_installment", allow_zero=True)
        if self.max_term_months is not None:
            _check_int("max_term_months", self.max_term_months, 1, 600)
        _check_int("max_restructurings", self.max_restructurings, 0, 100)
        _check_int("min_days_past_due", self.min_days_past_due, 0, 10_000)


@dataclass(frozen=True)
class RestructuringOffer:
    """An offer to change a loan's remaining schedule.

    `extension_months` are added to the `remaining_months` installments; `new_installment`, if
    given, is the reduced installment (else the engine recomputes it over the longer term).
    """

    current_installment: Decimal
    remaining_months: int
    outstanding_principal: Decimal
    extension_months: int = 0
    new_installment: Decimal | None = None
    elapsed_months: int = 0

    def __post_init__(self) -> None:
        for name in ("current_installment", "outstanding_principal"):
            object.__setattr__(self, name, parse_amount(getattr(self, name), field=name))
        if self.new_installment is not None:
            value = parse_amount(self.new_installment, field="new_installment")
            object.__setattr__(self, "new_installment", value)
        _check_int("remaining_months", self.remaining_months, 1, 600)
        _check_int("extension_months", self.extension_months, 0, 600)
        _check_int("elapsed_months", self.elapsed_months, 0, 600)


def check_restructuring(
    offer: RestructuringOffer,
    *,
    limits: RestructuringLimits,
    days_past_due: int,
    restructurings_so_far: int,
) -> None:
    """Raise for the first limit the offer breaks (Conflict: the loan's state; else 422)."""
    _check_int("days_past_due", days_past_due, 0, 100_000)
    _check_int("restructurings_so_far", restructurings_so_far, 0, 1000)
    if restructurings_so_far >= limits.max_restructurings:
        raise Conflict(
            f"the loan was restructured {restructurings_so_far} times; "
            f"the product allows {limits.max_restructurings}",
            field="restructurings_so_far",
            rule="max-restructurings",
        )
    if days_past_due < limits.min_days_past_due:
        raise Conflict(
            f"{days_past_due} days past due; restructuring needs {limits.min_days_past_due}",
            field="days_past_due",
            rule="min-days-past-due",
        )
    if offer.extension_months == 0 and offer.new_installment is None:
        raise ValidationFailed(
            "extension_months", "empty-offer", "an offer extends the term or cuts the installment"
        )
    if offer.extension_months > limits.max_extension_months:
        raise ValidationFailed(
            "extension_months",
            "max-extension",
            f"{offer.extension_months} months > the limit of {limits.max_extension_months}",
        )
    term = offer.elapsed_months + offer.remaining_months + offer.extension_months
    if limits.max_term_months is not None and term > limits.max_term_months:
        raise ValidationFailed(
            "extension_months",
            "max-term",
            f"the term would be {term} months > the product's {limits.max_term_months}",
        )
    if offer.new_installment is not None:
        _check_installment(offer, offer.new_installment, limits)


def _check_installment(
    offer: RestructuringOffer, new: Decimal, limits: RestructuringLimits
) -> None:
    floor = offer.current_installment * limits.min_installment_share
    months = offer.remaining_months + offer.extension_months
    if new >= offer.current_installment:
        raise ValidationFailed(
            "new_installment",
            "reduced-installment",
            f"{new} does not reduce the current installment {offer.current_installment}",
        )
    if new < floor:
        raise ValidationFailed(
            "new_installment",
            "min-installment-share",
            f"{new} < {limits.min_installment_share} x {offer.current_installment} = {floor}",
        )
    if new < limits.min_installment:
        raise ValidationFailed(
            "new_installment", "min-installment", f"{new} < the minimum {limits.min_installment}"
        )
    if new * months < offer.outstanding_principal:
        raise ValidationFailed(
            "new_installment",
            "amortizes",
            f"{months} x {new} = {new * months} does not repay the principal "
            f"{offer.outstanding_principal}",
        )


def _payments(payments: Sequence[tuple[date, Decimal]], today: date) -> list[tuple[date, Decimal]]:
    checked = []
    for paid_on, value in payments:
        if not isinstance(paid_on, date) or isinstance(paid_on, datetime):
            raise ValidationFailed("payments_since", "date", "each payment has a date")
        if paid_on > today:
            raise ValidationFailed(
                "payments_since", "not-after-today", "a payment is in the future"
            )
        checked.append((paid_on, parse_amount(value, field="payments_since")))
    return checked
