"""Day counts, month arithmetic and nominal due dates (pure; no clock, no calendar).

Conventions
-----------
* `year_fraction(start, end, day_count)` measures the half-open period [start, end):
  - act/365: actual days / 365 (fixed, also in leap years);
  - act/360: actual days / 360;
  - 30/360: US bond basis (ISDA 2006 "30/360"): D1 = 31 -> 30; D2 = 31 -> 30 only when D1 is
    then 30. There is no special rule for the end of February;
  - act/act: ISDA: the days falling in each calendar year divided by that year's length
    (365 or 366), summed.
  `end` before `start` is an error; `end == start` gives 0.
* `add_months(anchor, n)` keeps the anchor's day of month and clamps it to the target month's
  length: 31 Jan + 1 = 28/29 Feb, 31 Jan + 2 = 31 Mar, 30 Apr + 1 = 30 May. Schedules always
  compute the k-th date from the anchor (`add_months(anchor, k)`), never by chaining from the
  previous (possibly clamped) date, so a 31st anchor returns to the 31st after February.
* `nominal_due_dates` gives unadjusted due dates (business days are `core.calendars`' job).
  Without `first_due_date` the anchor is `start` and the k-th due date (k = 1..periods) is
  `start + k` frequency steps; with `first_due_date` the anchor is that date and the k-th due
  date is `first_due_date + (k - 1)` steps (an odd first period, then regular ones).
  A step is `count` days, `count` weeks or `count` months. Semimonthly: the even steps are
  whole months from the anchor and each odd step is the preceding whole-month date + 15 days;
  a start on 1 Jan gives 16 Jan, 1 Feb, 16 Feb, 1 Mar ... and a start on 31 Jan gives 15 Feb,
  29 Feb (2024), 15 Mar, 31 Mar ... Months have at least 28 days, so dates strictly increase.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

from mobilend.core.errors import ValidationFailed
from mobilend.loans.terms import DayCount, Frequency, FrequencyUnit

SEMIMONTH_OFFSET_DAYS = 15


def year_fraction(start: date, end: date, day_count: DayCount) -> Decimal:
    """The length of [start, end) in years under `day_count`."""
    if end < start:
        raise ValidationFailed("end", "not-before-start", f"end {end} is before start {start}")
    days = (end - start).days
    if day_count is DayCount.ACT_365:
        return Decimal(days) / 365
    if day_count is DayCount.ACT_360:
        return Decimal(days) / 360
    if day_count is DayCount.THIRTY_360:
        return Decimal(_days_30_360(start, end)) / 360
    if day_count is DayCount.ACT_ACT:
        return _act_act_isda(start, end)
    raise ValidationFailed("day_count", "known-day-count", f"unknown day count {day_count!r}")


def _days_30_360(start: date, end: date) -> int:
    d1 = min(start.day, 30)
    d2 = min(end.day, 30) if d1 == 30 else end.day
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def _act_act_isda(start: date, end: date) -> Decimal:
    total = Decimal(0)
    cursor = start
    while cursor < end:
        year_end = date(cursor.year + 1, 1, 1)
        stop = min(end, year_end)
        year_days = 366 if calendar.isleap(cursor.year) else 365
        total += Decimal((stop - cursor).days) / year_days
        cursor = stop
    return total


def add_months(anchor: date, months: int) -> date:
    """`anchor` moved by `months` calendar months, the day clamped to the month's length."""
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    month = month0 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def add_steps(anchor: date, frequency: Frequency, steps: int) -> date:
    """`anchor` moved by `steps` repayment periods of `frequency` (see the module notes)."""
    count = frequency.count
    if frequency.unit is FrequencyUnit.DAY:
        return anchor + timedelta(days=steps * count)
    if frequency.unit is FrequencyUnit.WEEK:
        return anchor + timedelta(weeks=steps * count)
    if frequency.unit is FrequencyUnit.MONTH:
        return add_months(anchor, steps * count)
    # Semimonthly: `count` half-months per step; two half-months make a whole month.
    halves = steps * count
    whole = add_months(anchor, halves // 2)
    return whole + timedelta(days=SEMIMONTH_OFFSET_DAYS) if halves % 2 else whole


def nominal_due_dates(
    start: date, frequency: Frequency, periods: int, first_due_date: date | None = None
) -> list[date]:
    """Unadjusted due dates of `periods` installments counted from `start`."""
    if periods < 1:
        raise ValidationFailed("periods", "positive", f"periods must be at least 1, got {periods}")
    if frequency.count < 1:
        raise ValidationFailed(
            "frequency", "positive-count", f"frequency count must be at least 1: {frequency}"
        )
    if first_due_date is None:
        return [add_steps(start, frequency, k) for k in range(1, periods + 1)]
    if first_due_date <= start:
        raise ValidationFailed(
            "first_due_date",
            "after-start",
            f"first due date {first_due_date} must be after the start {start}",
        )
    return [add_steps(first_due_date, frequency, k) for k in range(periods)]
