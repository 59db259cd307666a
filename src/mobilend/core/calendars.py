"""Business-day calendars and due-date rolling, backed by the `holidays` package.

A calendar code is an ISO 3166 country code that `holidays` knows ("CN", "US", "HK", ...),
optionally with a subdivision after a dash ("US-NY"), or "NONE" for a calendar whose only
non-business days are Saturday and Sunday.

A business day is what `holidays` calls a working day: not a public holiday and not a weekend
day, except that a weekend day declared a working day counts as a business day. This captures
China's adjusted working days (调休): 2025-01-26, a Sunday, was a working day by the State
Council notice. `holidays` ships the published State Council dates; for years not yet
published its CN calendar falls back to the fixed and lunar holidays, without 调休.

Calendar objects are built once per code and cached. They fill in each year lazily on first
look-up, which mutates them, so look-ups are serialised by a lock.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from functools import lru_cache

import holidays

from mobilend.core.errors import ValidationFailed
from mobilend.loans.terms import BusinessDayRule

WEEKENDS_ONLY = "NONE"
_SATURDAY = 5
_ONE_DAY = timedelta(days=1)
_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def _calendar(code: str) -> holidays.HolidayBase | None:
    """The `holidays` object for a normalised code; None for the weekends-only calendar."""
    if code == WEEKENDS_ONLY:
        return None
    country, _, subdivision = code.partition("-")
    try:
        return holidays.country_holidays(country, subdiv=subdivision or None)
    except NotImplementedError:
        raise ValidationFailed(
            "calendar",
            "known-calendar",
            f"unknown calendar {code!r}: use a country code known to `holidays` or NONE",
        ) from None


def check_calendar(calendar_code: str) -> None:
    """Raise ValidationFailed(field='calendar') unless the code names a known calendar."""
    _calendar(calendar_code.strip().upper())


def is_business_day(d: date, calendar_code: str) -> bool:
    """True if `d` is a working day in the calendar (see the module notes)."""
    cal = _calendar(calendar_code.strip().upper())
    if cal is None:
        return d.weekday() < _SATURDAY
    with _LOCK:
        return bool(cal.is_working_day(d))


def adjust(d: date, rule: BusinessDayRule, calendar_code: str) -> date:
    """Roll `d` to a business day: NONE leaves it, NEXT moves forward, PREVIOUS back."""
    if rule is BusinessDayRule.NONE:
        return d
    step = _ONE_DAY if rule is BusinessDayRule.NEXT else -_ONE_DAY
    while not is_business_day(d, calendar_code):
        d += step
    return d
