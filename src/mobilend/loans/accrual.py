"""Daily accrual of scheduled interest and of penalty interest 罚息, to the cent (pure).

Scheduled interest: an installment's interest is recognised evenly over its period. The
*cumulative* amount recognised by the end of day `as_of` is

    accrued(as_of) = floor_to_cent(scheduled_interest * days_elapsed / days_in_period)
    days_elapsed   = clamp((as_of - period_start).days, 0, days_in_period)

and is exactly `scheduled_interest` from `period_end` on. The day's posting is the difference
of two consecutive cumulative figures, so postings are whole cents, the sub-cent remainder is
carried implicitly (it is never stored), and the postings over the period add up to the
scheduled interest exactly: no cent is created or lost. Days run from period_start + 1 to
period_end (the day on which the period starts accrues nothing).

Penalty interest: charged per overdue day on the overdue principal at
`annual rate / days_in_year` (365 for act/365, 360 for act/360 and 30/360, 365 or 366 by the
day's calendar year for act/act). The exact daily amount is kept to CARRY_UNIT (1e-20, rounded
up so that a cent the exact rational total reaches is posted on that very day; the excess is
under 1e-20 a day). Each day posts the whole cents of (carry + daily amount) and carries the
rest, always in [0, 0.01), to the next day.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import CENT, ZERO
from mobilend.loans.terms import DayCount

CARRY_UNIT = Decimal("1e-20")
_PRECISION = 80  # digits for penalty arithmetic: sums at CARRY_UNIT scale stay exact
_ONE_DAY = timedelta(days=1)


def interest_accrued_to(
    scheduled_interest: Decimal, period_start: date, period_end: date, as_of: date
) -> Decimal:
    """Interest recognised for the period by the end of `as_of`, truncated to the cent."""
    _require_non_negative(scheduled_interest, "scheduled_interest")
    days_in_period = (period_end - period_start).days
    if days_in_period < 0:
        raise ValidationFailed(
            "period_end", "not-before-start", "period_end is before period_start"
        )
    if days_in_period == 0:  # a period cut on its first day (a prepayment on a due date)
        return scheduled_interest if as_of >= period_end else ZERO
    days_elapsed = min(max((as_of - period_start).days, 0), days_in_period)
    if days_elapsed == days_in_period:
        return scheduled_interest
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        cents = scheduled_interest * days_elapsed / CENT // days_in_period  # exact floor
        return (cents * CENT).quantize(CENT, rounding=ROUND_DOWN)


def daily_accrual(
    scheduled_interest: Decimal, period_start: date, period_end: date, day: date
) -> Decimal:
    """The interest to post for `day`: accrued to `day` minus accrued to the day before."""
    today = interest_accrued_to(scheduled_interest, period_start, period_end, day)
    yesterday = interest_accrued_to(scheduled_interest, period_start, period_end, day - _ONE_DAY)
    return today - yesterday


def days_in_year(day: date, day_count: DayCount) -> int:
    """The denominator of one day's interest under `day_count`."""
    if day_count is DayCount.ACT_ACT:
        year = day.year
        return 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365
    return 365 if day_count is DayCount.ACT_365 else 360


def penalty_for_day(
    overdue_principal: Decimal,
    penalty_annual_rate: Decimal,
    day: date,
    day_count: DayCount,
    carry: Decimal,
) -> tuple[Decimal, Decimal]:
    """Penalty interest for one day: (whole cents to post, new carry in [0, 0.01))."""
    _check_penalty_inputs(overdue_principal, penalty_annual_rate, carry)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        annual_amount = overdue_principal * penalty_annual_rate
        total = carry + _daily_amount(annual_amount, days_in_year(day, day_count))
        posted = total.quantize(CENT, rounding=ROUND_DOWN)
        return posted, total - posted


def penalty_between(
    overdue_principal: Decimal,
    penalty_annual_rate: Decimal,
    start: date,
    end: date,
    day_count: DayCount,
    carry: Decimal,
) -> tuple[Decimal, Decimal]:
    """Penalty for the days start, start + 1, ..., end - 1 (end excluded), in closed form.

    Returns the same (posted, carry) as calling `penalty_for_day` on each day in turn: with a
    constant daily amount d, n days post floor_to_cent(carry + n * d) and carry the rest.
    """
    _check_penalty_inputs(overdue_principal, penalty_annual_rate, carry)
    if end < start:
        raise ValidationFailed("end", "not-before-start", "end must not be before start")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        annual_amount = overdue_principal * penalty_annual_rate
        total = carry
        for days, denominator in _spans(start, end, day_count):
            total += days * _daily_amount(annual_amount, denominator)
        posted = total.quantize(CENT, rounding=ROUND_DOWN)
        return posted, total - posted


def _daily_amount(annual_amount: Decimal, denominator: int) -> Decimal:
    """annual_amount / denominator rounded up to CARRY_UNIT, computed exactly."""
    units = annual_amount / CARRY_UNIT
    whole, remainder = divmod(units, denominator)
    return (whole + (1 if remainder else 0)) * CARRY_UNIT


def _spans(start: date, end: date, day_count: DayCount) -> list[tuple[int, int]]:
    """Split [start, end) into (number of days, days in year) runs with one denominator."""
    if day_count is not DayCount.ACT_ACT:
        return [((end - start).days, days_in_year(start, day_count))]
    spans = []
    while start < end:
        next_year = min(date(start.year + 1, 1, 1), end)
        spans.append(((next_year - start).days, days_in_year(start, day_count)))
        start = next_year
    return spans


def _require_non_negative(value: Decimal, field: str) -> None:
    if not value.is_finite() or value < 0:
        raise ValidationFailed(field, "non-negative", f"{field} must be non-negative, got {value}")


def _check_penalty_inputs(overdue_principal: Decimal, rate: Decimal, carry: Decimal) -> None:
    _require_non_negative(overdue_principal, "overdue_principal")
    _require_non_negative(rate, "penalty_annual_rate")
    if not carry.is_finite() or not ZERO <= carry < CENT:
        raise ValidationFailed("carry", "sub-cent", f"carry must be in [0, 0.01), got {carry}")
