"""Annualized rates of a cash-flow stream (pure, Decimal): periodic IRR, Reg Z APR, EU APRC.

Every method solves one equation for a rate r: the advances and the payments, each discounted
to the first advance, have equal present values. They differ only in how time is measured:

- `periodic_irr`: flow k is k periods after flow 0; discount (1 + r)^-k.
- `regz_apr`: 12 CFR 1026 Appendix J actuarial method: t whole unit-periods plus a fraction f
  of one, discount 1 / ((1 + f*r) * (1 + r)^t) ((b)(6), (b)(8)); APR = r x unit-periods a year.
- `eu_aprc`: Directive 2008/48/EC Annex I: t in years, discount (1 + X)^-t; APRC = X.
- `dated_irr_apr` (method "irr" of `solve_request`): Reg Z time, discount (1 + r)^-(t + f);
  the nominal figure r x unit-periods a year.

The root finder: the rate's sign changes are scanned outward from 0% in steps on a log(1 + r)
grid, alternating up and down, and the first bracket found is solved. So when a stream changes
sign several times and several rates fit, the one found is the bracketed root nearest to zero
(two roots inside one grid cell cancel out and are not seen). The bracket is solved in float
by Newton safeguarded by bisection, then polished by the same method in Decimal at 34 digits,
starting from the float root (normally 2 Decimal steps); periodic rates are returned to 28
significant digits, percentages to 4 decimals. NoRateExists when all flows have one sign or no
bracket lies between -100% and about +10^7 % per period.
"""

from __future__ import annotations

import math
import re
from calendar import monthrange
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import pairwise, zip_longest
from typing import Any, TypeVar

from mobilend.core.errors import NoRateExists, ValidationFailed

PCT_QUANTUM = Decimal("0.0001")  # percent results carry 4 decimals (ROUND_HALF_EVEN)
_CTX = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)
_RESULT = Context(prec=28, rounding=ROUND_HALF_EVEN)  # drop the last digits of solver noise
_GRID = [0.004 * 1.6**k for k in range(20)]  # |log(1 + r)| scan points, 0.004 .. 30
_DOWN = [math.expm1(-x) for x in _GRID]  # r from -0.4% down to -100% + 1e-13
_UP = [math.expm1(x) for x in _GRID if x < 12]  # r up to about +1.3e5

Flow = tuple[Decimal, int, Decimal]  # signed amount, whole periods t, fraction f of a period
Dated = Sequence[tuple[date, Decimal]]
N = TypeVar("N", float, Decimal)

# ---------------------------------------------------------------- root finder


def _npv_dec(flows: Sequence[Flow], simple: bool, r: Decimal) -> tuple[Decimal, Decimal]:
    """NPV and dNPV/dr; the fraction f compounds simply (Reg Z) or as (1 + r)^f."""
    one_r = 1 + r
    log = one_r.ln() if not simple and any(f for _, _, f in flows) else Decimal(0)
    frac: dict[Decimal, Decimal] = {}
    value = slope = Decimal(0)
    for c, t, f in flows:
        grow = one_r**t
        k = t / one_r
        if f and simple:
            grow *= 1 + f * r
            k += f / (1 + f * r)
        elif f:
            if f not in frac:
                frac[f] = (f * log).exp()
            grow *= frac[f]
            k += f / one_r
        disc = c / grow
        value += disc
        slope -= disc * k
    return value, slope


def _npv_float(
    flows: Sequence[tuple[float, int, float]], simple: bool, r: float
) -> tuple[float, float]:
    """Float twin of `_npv_dec` for bracketing; raises OverflowError instead of returning inf."""
    log, one_r = math.log1p(r), 1 + r
    value = slope = 0.0
    for c, t, f in flows:
        if simple:
            disc = c * math.exp(-t * log) / (1 + f * r)
            k = t / one_r + f / (1 + f * r)
        else:
            disc = c * math.exp(-(t + f) * log)
            k = (t + f) / one_r
        value += disc
        slope -= disc * k
    if not (math.isfinite(value) and math.isfinite(slope)):
        raise OverflowError("npv out of float range")
    return value, slope


def _safe_newton(
    fn: Callable[[N], tuple[N, N]], lo: N, hi: N, lo_positive: bool, x: N, tol: N, maxiter: int
) -> N | None:
    """Newton inside the bracket [lo, hi]; bisect when a step leaves it or shrinks too slowly."""
    last = hi - lo
    for _ in range(maxiter):
        value, slope = fn(x)
        if value == 0:
            return x
        if (value > 0) == lo_positive:
            lo = x
        else:
            hi = x
        nx = x - value / slope if slope else lo
        if not lo < nx < hi or abs(2 * (nx - x)) > abs(last):
            nx = (lo + hi) / 2
        last, x = nx - x, nx
        if abs(last) <= tol * (1 + abs(x)):
            return x
    return None


def _solve(flows: Sequence[Flow], simple: bool) -> Decimal:
    """The periodic rate r > -1 that zeroes the NPV (see the module docstring for the choice)."""
    if all(c >= 0 for c, _, _ in flows) or all(c <= 0 for c, _, _ in flows):
        raise NoRateExists(
            "no rate exists: the cash flows need both an advance and a repayment"
            " (amounts of both signs, not all zero)"
        )
    fflows = [(float(c), t, float(f)) for c, t, f in flows]

    def positive(r: float) -> bool | None:  # sign of the NPV at r; None when exactly zero
        try:
            value = _npv_float(fflows, simple, r)[0]
        except OverflowError:
            value = 0.0
        if value == 0:  # out of float range or within float noise: ask Decimal
            value = float(_npv_dec(flows, simple, Decimal(r))[0].compare(0))
        return None if value == 0 else value > 0

    at_zero = sum((c for c, _, _ in flows), Decimal(0))
    if at_zero == 0:
        return Decimal(0)
    bracket: tuple[float, float, bool] | None = None
    prev = {1: (0.0, at_zero > 0), -1: (0.0, at_zero > 0)}
    for up, down in zip_longest(_UP, _DOWN):
        for side, r in ((1, up), (-1, down)):
            if r is None:
                continue
            sign = positive(r)
            if sign is None:
                return Decimal(r)
            r0, sign0 = prev[side]
            if sign != sign0:
                bracket = (min(r0, r), max(r0, r), sign0 if r0 < r else sign)
                break
            prev[side] = (r, sign)
        if bracket:
            break
    if bracket is None:
        raise NoRateExists(
            "no rate exists: the flows' present value keeps one sign for every rate from -100%"
            " to over +10,000,000% per period"
        )
    lo, hi, lo_positive = bracket
    guess = (lo + hi) / 2
    try:
        found = _safe_newton(
            lambda r: _npv_float(fflows, simple, r), lo, hi, lo_positive, guess, 1e-15, 100
        )
        guess = found if found is not None else guess
    except (OverflowError, ZeroDivisionError):
        pass
    root = _safe_newton(
        lambda r: _npv_dec(flows, simple, r),
        Decimal(lo),
        Decimal(hi),
        lo_positive,
        Decimal(guess),
        Decimal("1E-28"),
        400,
    )
    if root is None:  # pragma: no cover - bisection on a bracket always converges in 400 steps
        raise NoRateExists("the rate solver did not converge for these flows")
    return root


# ---------------------------------------------------------------- public: periodic IRR


@dataclass(frozen=True, slots=True)
class IrrDisclosure:
    """The two annualized figures PBoC Announcement [2021] No. 3 allows (simple must say so)."""

    periodic: Decimal  # IRR per period, a fraction
    simple_pct: Decimal  # periodic x periods a year x 100 (单利年化, "simple")
    compound_pct: Decimal  # ((1 + periodic)^periods a year - 1) x 100 (复利年化)


def _amount(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValidationFailed(field, "decimal", f"{field} must be a Decimal, not {value!r}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValidationFailed(field, "finite", f"{field} must be a finite number")
    return amount


def periodic_irr(amounts: Sequence[Decimal]) -> Decimal:
    """IRR per period of equally spaced flows: amounts[k] falls k periods after amounts[0]."""
    if not amounts:
        raise ValidationFailed("amounts", "non_empty", "at least two cash flows are needed")
    flows = [(_amount(a, f"amounts[{k}]"), k, Decimal(0)) for k, a in enumerate(amounts)]
    with localcontext(_CTX):
        return _RESULT.plus(_solve(flows, simple=True))


def irr_disclosure(amounts: Sequence[Decimal], periods_per_year: Decimal) -> IrrDisclosure:
    """Periodic IRR with its simple and compound annualizations, percent to 4 decimals."""
    ppy = _amount(periods_per_year, "periods_per_year")
    if ppy <= 0:
        raise ValidationFailed("periods_per_year", "positive", "periods_per_year must be > 0")
    return _annualize(periodic_irr(amounts), ppy)


def dated_irr_disclosure(
    advances: Sequence[tuple[date, Decimal]],
    payments: Sequence[tuple[date, Decimal]],
    unit_period: str,
    unit_multiple: int = 1,
) -> IrrDisclosure:
    """IRR per unit-period of dated flows (odd first periods, due dates moved off holidays):
    time counted as in `regz_apr`, the odd fraction compounding; both annualizations."""
    start, series_day = _check_dated(advances, payments)
    unit = _unit_from(unit_period, unit_multiple)
    if unit is None:
        raise ValidationFailed("unit_period", "required", "unit_period is required")
    with localcontext(_CTX):
        flows = [(-Decimal(a), *_unit_time(start, d, unit, series_day)) for d, a in advances]
        flows += [(Decimal(p), *_unit_time(start, d, unit, series_day)) for d, p in payments]
        periodic = _RESULT.plus(_solve(flows, simple=False))
    return _annualize(periodic, unit.per_year)


def _annualize(periodic: Decimal, ppy: Decimal) -> IrrDisclosure:
    with localcontext(_CTX):
        if ppy == ppy.to_integral_value():
            grown = (1 + periodic) ** int(ppy)
        else:
            grown = (ppy * (1 + periodic).ln()).exp()
        return IrrDisclosure(periodic, _pct(periodic * ppy), _pct(grown - 1))


def _pct(fraction: Decimal) -> Decimal:
    return (fraction * 100).quantize(PCT_QUANTUM, rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------- Appendix J time


@dataclass(frozen=True, slots=True)
class _Unit:
    name: str  # day, week, semimonth, month, year
    multiple: int = 1

    @property
    def per_year(self) -> Decimal:
        """(b)(5): 365 days, 52 weeks, 24 semimonths, 12 months a year, over the multiple."""
        base = {"day": 365, "week": 52, "semimonth": 24, "month": 12, "year": 1}[self.name]
        return Decimal(base) / self.multiple

    @property
    def days(self) -> Decimal:  # approximate length, to order units and round averages
        year = Decimal(365)
        base = {"day": Decimal(1), "week": Decimal(7), "semimonth": year / 24, "month": year / 12}
        return base.get(self.name, year) * self.multiple


UNIT_NAMES = ("day", "week", "semimonth", "month", "year")
_STANDARD = (
    [_Unit("day"), _Unit("semimonth"), _Unit("year")]
    + [_Unit("week", k) for k in range(1, 53)]
    + [_Unit("month", k) for k in range(1, 12)]
)


def _shift_months(day: date, months: int, anchor: int) -> date:
    """`months` months before `day`, on day `anchor` clamped to the month's length."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month0 + 1, min(anchor, monthrange(year, month0 + 1)[1]))


def _anchor(end: date, series_day: int) -> int:
    """The day of month months are measured from: `end`'s day, or when `end` is a month's last
    day the series day (the latest day of month the payments fall on), so a series on the 30th
    or 31st counts February's last day as its month-end (Appendix J (b)(3)(iv))."""
    last = monthrange(end.year, end.month)[1]
    return max(end.day, series_day) if end.day == last else end.day


def _months_back(start: date, end: date, series_day: int) -> tuple[int, date]:
    """Whole months measured back from `end` towards `start` ((b)(3)(iv), (b)(5)(ii)):
    (months, the date where the count stops)."""
    anchor = _anchor(end, series_day)
    months = (end.year - start.year) * 12 + end.month - start.month
    while months > 0 and _shift_months(end, months, anchor) < start:
        months -= 1
    return months, _shift_months(end, months, anchor)


def _unit_time(start: date, end: date, unit: _Unit, series_day: int) -> tuple[int, Decimal]:
    """Whole unit-periods t and the odd fraction f from `start` to `end`, per Appendix J (b)(5)."""
    k = unit.multiple
    if unit.name in ("day", "week"):  # (b)(5)(iv)-(v): days / (7 x weeks) or days / days
        size = k if unit.name == "day" else 7 * k
        t, rest = divmod((end - start).days, size)
        return t, Decimal(rest) / size
    months, mark = _months_back(start, end, series_day)
    rest = (mark - start).days
    if unit.name == "year":  # (b)(5): full years of 12 months back; rest months/12 or days/365
        t, months = divmod(months, 12)
        if rest == 0:
            return t, Decimal(months) / 12
        years_back = _shift_months(end, 12 * t, _anchor(end, series_day))
        return t, Decimal((years_back - start).days) / 365
    # (b)(5)(ii) months: 30 x months measured back + odd days, over 30 x months in the unit.
    # (b)(5)(iii) semimonths: 15 x semimonths back + odd days, over 15 x semimonths in the unit;
    # two semimonths make a month, and odd days of 15 or more make one more semimonth, so the
    # day total is the same 30 x months + odd days.
    size = 15 * k if unit.name == "semimonth" else 30 * k
    t, odd = divmod(30 * months + rest, size)
    return t, Decimal(odd) / size


def _classify(first: date, second: date, series_day: int) -> _Unit | None:
    """The period between two dates as a unit, None when longer than a year ((b)(3), (b)(4))."""
    days = (second - first).days
    months, mark = _months_back(first, second, series_day)
    if mark == first and 0 < months <= 12:
        return _Unit("year") if months == 12 else _Unit("month", months)
    if days > 365:
        return None
    if days % 7 == 0:
        return _Unit("week", days // 7)
    if 13 <= days <= 16:  # half a month: 1st/16th or 15th/last-day series
        return _Unit("semimonth")
    return _Unit("day", days)


def _infer_unit(start: date, advances: list[date], payments: list[date], series_day: int) -> _Unit:
    """Appendix J (b)(4)(i): the common period (one occurring more than once, at most a year)
    that occurs most often, the smaller one on a tie; with no common period, the average period
    rounded to the nearest standard interval (the lower one when equally near).

    Periods are the intervals between successive payment dates, between successive advance dates,
    and from the start of the term to the first payment ((b)(3)(i)).
    """
    pays = sorted(set(payments))
    advs = sorted(set(advances))
    pairs = [(start, pays[0]), *pairwise(pays), *pairwise(advs)]
    pairs = [(a, b) for a, b in pairs if b > a]
    counts = Counter(u for a, b in pairs if (u := _classify(a, b, series_day)) is not None)
    common = [(-n, u.days, u) for u, n in counts.items() if n > 1]
    if common:
        return min(common, key=lambda c: (c[0], c[1]))[2]
    average = Decimal(sum((b - a).days for a, b in pairs)) / max(len(pairs), 1)
    return min(_STANDARD, key=lambda u: (abs(u.days - average), u.days))


def _unit_from(name: object, multiple: object) -> _Unit | None:
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValidationFailed("unit_multiple", "positive_int", "unit_multiple must be an int >= 1")
    if name is None:
        if multiple != 1:
            raise ValidationFailed(
                "unit_multiple", "requires_unit_period", "unit_multiple needs a unit_period"
            )
        return None
    if not isinstance(name, str) or name not in UNIT_NAMES:
        raise ValidationFailed("unit_period", "one_of", f"unit_period must be one of {UNIT_NAMES}")
    if name == "month" and multiple == 12:
        return _Unit("year")
    unit = _Unit(name, multiple)
    if unit.days > 366:
        raise ValidationFailed(
            "unit_multiple", "at_most_one_year", "a unit-period may not exceed one year ((b)(4))"
        )
    return unit


def _check_dated(advances: Dated, payments: Dated) -> tuple[date, int]:
    """Validate dated flows; return the first advance date and the payments' series day."""
    for name, flows in (("advances", advances), ("payments", payments)):
        if not flows:
            raise ValidationFailed(name, "non_empty", f"{name} must list at least one flow")
        for k, (day, amount) in enumerate(flows):
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValidationFailed(f"{name}[{k}].date", "date", "a date is required")
            if _amount(amount, f"{name}[{k}].amount") < 0:
                raise ValidationFailed(
                    f"{name}[{k}].amount", "non_negative", "amounts are positive sizes of flows"
                )
    start = min(day for day, _ in advances)
    for k, (day, _) in enumerate(payments):
        if day < start:
            raise ValidationFailed(
                f"payments[{k}].date", "not_before_first_advance", "a payment precedes the loan"
            )
    return start, max(day.day for day, _ in payments)


def _dated_rate(
    advances: Dated, payments: Dated, unit_period: str | None, unit_multiple: int, simple: bool
) -> Decimal:
    """Reg Z time and equation; `simple` False compounds the odd fraction too (plain IRR)."""
    start, series_day = _check_dated(advances, payments)
    unit = _unit_from(unit_period, unit_multiple)
    with localcontext(_CTX):
        if unit is None and len(advances) == 1 and len(payments) == 1:
            # (b)(4)(ii), (b)(5): single advance, single payment: the unit-period is the term
            # (at most a year): 1 unit-period of 12/months or 365/days a year.
            end = payments[0][0]
            months, mark = _months_back(start, end, series_day)
            if months < 12:
                days = (end - start).days
                if days == 0:
                    raise NoRateExists("no rate exists for a loan repaid on the day it is made")
                advance, payment = Decimal(advances[0][1]), Decimal(payments[0][1])
                flows = [(-advance, 0, Decimal(0)), (payment, 1, Decimal(0))]
                per_year = Decimal(12) / months if mark == start else Decimal(365) / days
                return _pct(_solve(flows, simple) * per_year)
            unit = _Unit("year")
        if unit is None:
            advance_dates, payment_dates = [d for d, _ in advances], [d for d, _ in payments]
            unit = _infer_unit(start, advance_dates, payment_dates, series_day)
        flows = [(-Decimal(a), *_unit_time(start, d, unit, series_day)) for d, a in advances]
        flows += [(Decimal(p), *_unit_time(start, d, unit, series_day)) for d, p in payments]
        return _pct(_solve(flows, simple) * unit.per_year)


def regz_apr(
    advances: Sequence[tuple[date, Decimal]],
    payments: Sequence[tuple[date, Decimal]],
    unit_period: str | None = None,
    unit_multiple: int = 1,
) -> Decimal:
    """US Regulation Z APR in percent (4 decimals) by the Appendix J actuarial method.

    The term starts at the first advance ((b)(2)). The unit-period is `unit_period` x
    `unit_multiple` ("month" x 3 = a quarter) or, when None, inferred by (b)(4): the period
    occurring most often (at least twice) among the intervals between payment dates, between
    advance dates and from the first advance to the first payment, the shorter on a tie; with
    none repeated, their average rounded to the nearest standard interval. A single advance
    repaid by a single payment uses the term itself (at most a year).
    Each flow's time is whole unit-periods counted back from its date plus the odd days as a
    fraction ((b)(5)): /30 a month, /15 a semimonth, /7 a week, /365 for years; the fraction
    earns simple interest ((b)(6)). APR = unit-period rate x unit-periods a year ((b)(1)).
    Dates rolled for weekends are not normalized: pass the unit-period for such schedules.
    """
    return _dated_rate(advances, payments, unit_period, unit_multiple, simple=True)


def dated_irr_apr(
    advances: Sequence[tuple[date, Decimal]],
    payments: Sequence[tuple[date, Decimal]],
    unit_period: str | None = None,
    unit_multiple: int = 1,
) -> Decimal:
    """Nominal IRR in percent: time as in `regz_apr`, but the odd fraction compounds,
    discount (1 + r)^-(t + f); result = periodic IRR x unit-periods a year (simple figure)."""
    return _dated_rate(advances, payments, unit_period, unit_multiple, simple=False)


def _eu_years(start: date, end: date, series_day: int) -> tuple[int, Decimal]:
    """Annex I remark (c): whole months back from `end` (12 equal months a year), the rest
    in days over the days of the complete year counted back from the rest's last day."""
    months, mark = _months_back(start, end, series_day)
    year_days = (mark - _shift_months(mark, 12, mark.day)).days  # 365, or 366 over a Feb 29
    years, months = divmod(months, 12)
    return years, Decimal(months) / 12 + Decimal((mark - start).days) / year_days


def eu_aprc(
    advances: Sequence[tuple[date, Decimal]], payments: Sequence[tuple[date, Decimal]]
) -> Decimal:
    """EU APRC in percent (4 decimals) by Directive 2008/48/EC Annex I.

    Sum of advances x (1 + X)^-t = sum of payments x (1 + X)^-t, t in years from the first
    drawdown. Time convention implemented (remark (c)): whole months counted back from each
    flow's date, as months/12, plus the remaining days over 365 or 366 (the days of the
    complete year ending on the last of those days). Weeks are not used, so weekly schedules
    are counted in months and days. The annex asks for at least one decimal (remark (d));
    the result carries four.
    """
    start, series_day = _check_dated(advances, payments)
    with localcontext(_CTX):
        flows = [(-Decimal(a), *_eu_years(start, d, series_day)) for d, a in advances]
        flows += [(Decimal(p), *_eu_years(start, d, series_day)) for d, p in payments]
        return _pct(_solve(flows, simple=False))


# ---------------------------------------------------------------- JSON entry point

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_KEYS = {"method", "advances", "payments", "unit_period", "unit_multiple"}


def _iso_date(text: object) -> date | None:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # e.g. 2023-02-30
        return None


def _parse_flows(value: object, name: str) -> list[tuple[date, Decimal]]:
    if not isinstance(value, list) or not value:
        raise ValidationFailed(name, "non_empty_list", f"{name} must be a non-empty list")
    flows = []
    for k, item in enumerate(value):
        path = f"{name}[{k}]"
        if not isinstance(item, Mapping):
            raise ValidationFailed(path, "object", f"{path} must be an object with date, amount")
        extra = sorted(set(item) - {"date", "amount"})
        if extra:
            raise ValidationFailed(f"{path}.{extra[0]}", "unknown_field", "unknown field")
        day = _iso_date(item.get("date"))
        if day is None:
            raise ValidationFailed(f"{path}.date", "iso_date", "a date YYYY-MM-DD is required")
        amount = item.get("amount")
        exact_int = isinstance(amount, int) and not isinstance(amount, bool)  # exact in JSON
        if not (exact_int or (isinstance(amount, str) and _DECIMAL.fullmatch(amount))):
            raise ValidationFailed(
                f"{path}.amount",
                "decimal_string",
                'amount must be a decimal string like "1234.56" (or a JSON integer);'
                " JSON fractions are refused as they pass through binary floats",
            )
        flows.append((day, Decimal(str(amount))))
    return flows


def solve_request(payload: Mapping[str, Any]) -> dict[str, str]:
    """`mobilend apr --json`: {"method", "advances", "payments", "unit_period"?,
    "unit_multiple"?} -> {"apr_pct": "12.3456"}.

    method "regz" is `regz_apr`, "eu" is `eu_aprc`, and "irr" is `dated_irr_apr`: Reg Z time
    (same unit-period inference), the fraction compounding, apr_pct = periodic IRR x
    unit-periods a year (the simple/nominal figure). Flows are {"date": "YYYY-MM-DD",
    "amount": "decimal string"}; amounts may also be JSON integers, never JSON fractions.
    ValidationFailed names the JSON path of the bad field (e.g. "advances[0].amount").
    """
    if not isinstance(payload, Mapping):
        raise ValidationFailed("$", "object", "the request must be a JSON object")
    extra = sorted(set(payload) - _KEYS)
    if extra:
        raise ValidationFailed(extra[0], "unknown_field", f"unknown field {extra[0]!r}")
    method = payload.get("method")
    if method not in ("irr", "regz", "eu"):
        raise ValidationFailed("method", "one_of", "method must be one of irr, regz, eu")
    advances = _parse_flows(payload.get("advances"), "advances")
    payments = _parse_flows(payload.get("payments"), "payments")
    unit_period = payload.get("unit_period")
    unit_multiple = payload.get("unit_multiple", 1)
    _unit_from(unit_period, unit_multiple)  # validate before any solving
    if method == "eu":
        if unit_period is not None or "unit_multiple" in payload:
            field = "unit_period" if unit_period is not None else "unit_multiple"
            raise ValidationFailed(field, "not_applicable", "the EU APRC counts time in years")
        apr = eu_aprc(advances, payments)
    elif method == "regz":
        apr = regz_apr(advances, payments, unit_period, unit_multiple)
    else:
        apr = dated_irr_apr(advances, payments, unit_period, unit_multiple)
    return {"apr_pct": format(apr, "f")}
