"""Portfolio figures from plain rows: roll rates, vintage curves, PAR, NPL, collection rate (pure).

Amounts are Decimal in and out. Ratios are Decimal quantized to 4 decimals (0.0001 = 0.01%):

- PAR, NPL ratio, collection rate and vintage shares: the exact quotient rounded half-even;
- roll-rate rows: each row is rounded by largest remainder, so a non-empty row sums to exactly
  1.0000 (each rate is its exact value rounded down or up, by less than 0.0001; ties go to the
  leftmost column).

A ratio whose denominator is zero (nothing outstanding, nothing due) is None, never 0.
docs/portfolio-analytics.md defines each figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import ZERO, parse_amount

RATIO_UNIT = Decimal("0.0001")
_STEPS = 10_000  # RATIO_UNIT steps in 1
DPD_BUCKETS = ("current", "1-29", "30-59", "60-89", "90+")
CLOSED = "closed"  # roll-rate column: in the previous snapshot, gone from the current one
CLASSIFICATIONS = ("pass", "special_mention", "substandard", "doubtful", "loss")  # 五级分类
NON_PERFORMING = frozenset({"substandard", "doubtful", "loss"})


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator rounded half-even to 4 decimals; None when denominator is 0."""
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(RATIO_UNIT, rounding=ROUND_HALF_EVEN)


def dpd_bucket(days_past_due: int) -> str:
    """The default bucket: current (0), 1-29, 30-59, 60-89, 90+ days past due."""
    _check_non_negative("days_past_due", days_past_due)
    for low, name in ((90, "90+"), (60, "60-89"), (30, "30-59"), (1, "1-29")):
        if days_past_due >= low:
            return name
    return "current"


# --- roll rates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketRow:
    """One loan in a snapshot: its bucket and outstanding principal."""

    loan_id: str
    bucket: str
    balance: Decimal

    def __post_init__(self) -> None:
        _check_id(self.loan_id)
        object.__setattr__(self, "balance", _amount("balance", self.balance))


@dataclass(frozen=True)
class RollRates:
    """Bucket transitions from a previous snapshot to the current one.

    counts[a][b]: loans in bucket a then, in b now (b may be CLOSED). balances[a][b]: their
    balance in the previous snapshot. rates[a][b] = balances[a][b] / balance of bucket a then;
    count_rates likewise by count; None across a row whose bucket was empty (by balance or by
    count). Loans new in the current snapshot are not in the matrix: see new_count, new_balance.
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]
    balances: Mapping[str, Mapping[str, Decimal]]
    rates: Mapping[str, Mapping[str, Decimal | None]]
    count_rates: Mapping[str, Mapping[str, Decimal | None]]
    new_count: int
    new_balance: Decimal


def roll_rates(
    previous: Sequence[BucketRow],
    current: Sequence[BucketRow],
    *,
    buckets: Sequence[str] = DPD_BUCKETS,
) -> RollRates:
    """The roll-rate matrix between two snapshots of the same portfolio."""
    rows = _roll_buckets(buckets)
    before = _by_loan("previous", previous, rows)
    after = _by_loan("current", current, rows)
    counts: dict[tuple[str, str], int] = {}
    balances: dict[tuple[str, str], Decimal] = {}
    for loan_id, row in before.items():
        moved = after.get(loan_id)
        cell = (row.bucket, CLOSED if moved is None else moved.bucket)
        counts[cell] = counts.get(cell, 0) + 1
        balances[cell] = balances.get(cell, ZERO) + row.balance
    new = [row for loan_id, row in after.items() if loan_id not in before]
    return roll_matrix(
        counts,
        balances,
        buckets=rows,
        new_count=len(new),
        new_balance=sum((row.balance for row in new), ZERO),
    )


def roll_matrix(
    counts: Mapping[tuple[str, str], int],
    balances: Mapping[tuple[str, str], Decimal],
    *,
    buckets: Sequence[str] = DPD_BUCKETS,
    new_count: int = 0,
    new_balance: Decimal = ZERO,
) -> RollRates:
    """The roll-rate matrix from totals per (bucket then, bucket now or CLOSED) cell.

    This is what a GROUP BY over two joined snapshots yields; cells left out are 0. The rates
    are rounded exactly as `roll_rates` rounds them (it builds its matrix here).
    """
    rows = _roll_buckets(buckets)
    columns = (*rows, CLOSED)
    _check_non_negative("new_count", new_count)
    cell_counts = {a: dict.fromkeys(columns, 0) for a in rows}
    cell_balances = {a: dict.fromkeys(columns, ZERO) for a in rows}
    for (a, b), n in counts.items():
        if a not in rows or b not in columns:
            raise ValidationFailed("counts", "bucket", f"cell {a!r} -> {b!r} not in {columns}")
        _check_non_negative("counts", n)
        cell_counts[a][b] = n
    for (a, b), balance in balances.items():
        if a not in rows or b not in columns:
            raise ValidationFailed("balances", "bucket", f"cell {a!r} -> {b!r} not in {columns}")
        cell_balances[a][b] = _amount("balance", balance)
    return RollRates(
        rows=rows,
        columns=columns,
        counts=cell_counts,
        balances=cell_balances,
        rates={a: _row_shares(_cents(cell_balances[a]), columns) for a in rows},
        count_rates={a: _row_shares(cell_counts[a], columns) for a in rows},
        new_count=new_count,
        new_balance=_amount("new_balance", new_balance),
    )


def _roll_buckets(buckets: Sequence[str]) -> tuple[str, ...]:
    rows = tuple(buckets)
    if not rows or len(set(rows)) != len(rows) or CLOSED in rows:
        raise ValidationFailed("buckets", "unique", f"buckets are distinct and not {CLOSED!r}")
    return rows


def _by_loan(
    field: str, rows: Sequence[BucketRow], buckets: tuple[str, ...]
) -> dict[str, BucketRow]:
    seen: dict[str, BucketRow] = {}
    for row in rows:
        if row.bucket not in buckets:
            raise ValidationFailed(field, "bucket", f"bucket {row.bucket!r} not in {buckets}")
        if row.loan_id in seen:
            raise ValidationFailed(field, "unique-loan", f"loan {row.loan_id} appears twice")
        seen[row.loan_id] = row
    return seen


def _cents(amounts: Mapping[str, Decimal]) -> dict[str, int]:
    return {key: int(value * 100) for key, value in amounts.items()}


def _row_shares(parts: Mapping[str, int], columns: tuple[str, ...]) -> dict[str, Decimal | None]:
    """Shares of a row's total, to 4 decimals, by largest remainder (they sum to 1 exactly)."""
    total = sum(parts.values())
    if total == 0:
        return dict.fromkeys(columns, None)
    steps = {c: parts[c] * _STEPS // total for c in columns}
    remainders = {c: parts[c] * _STEPS % total for c in columns}
    short = _STEPS - sum(steps.values())
    ranked = sorted(columns, key=lambda c: (-remainders[c], columns.index(c)))
    for c in ranked[:short]:
        steps[c] += 1
    return {c: (Decimal(steps[c]) * RATIO_UNIT).quantize(RATIO_UNIT) for c in columns}


# --- vintage curves --------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortLoan:
    """A disbursed loan: its cohort is its disbursement month."""

    loan_id: str
    disbursed_on: date
    original_principal: Decimal

    def __post_init__(self) -> None:
        _check_id(self.loan_id)
        value = parse_amount(self.original_principal, field="original_principal")
        object.__setattr__(self, "original_principal", value)

    @property
    def cohort(self) -> str:
        return cohort_of(self.disbursed_on)


@dataclass(frozen=True)
class MonthOnBook:
    """A loan's days past due at a month on book (see `months_on_book`)."""

    loan_id: str
    months_on_book: int
    days_past_due: int

    def __post_init__(self) -> None:
        _check_id(self.loan_id)
        _check_non_negative("months_on_book", self.months_on_book)
        _check_non_negative("days_past_due", self.days_past_due)


@dataclass(frozen=True)
class VintageTable:
    """Per cohort ("2026-01") and month on book: the share 30+ DPD (or `threshold_days`+).

    amount_share: original principal of the loans at or past the threshold / the cohort's
    original principal; count_share: their number / the cohort's number of loans. A loan with
    no observation at a month on book (paid off, say) counts as not delinquent there.
    """

    threshold_days: int
    cumulative: bool
    cohorts: tuple[str, ...]
    loans: Mapping[str, int]
    principal: Mapping[str, Decimal]
    amount_share: Mapping[str, Mapping[int, Decimal]]
    count_share: Mapping[str, Mapping[int, Decimal]]


def cohort_of(disbursed_on: date) -> str:
    return f"{disbursed_on.year:04d}-{disbursed_on.month:02d}"


def months_on_book(disbursed_on: date, as_of: date) -> int:
    """Calendar months from the disbursement month to as_of's month (0 in the first month)."""
    months = (as_of.year - disbursed_on.year) * 12 + as_of.month - disbursed_on.month
    if months < 0 or as_of < disbursed_on:
        raise ValidationFailed("as_of", "not-before-disbursement", "as_of precedes disbursement")
    return months


def vintage_curves(
    loans: Sequence[CohortLoan],
    observations: Sequence[MonthOnBook],
    *,
    threshold_days: int = 30,
    cumulative: bool = False,
) -> VintageTable:
    """Vintage curves: each cohort's delinquent share at each month on book observed.

    cumulative=False: delinquent at that month on book; True: ever at or past the threshold
    at that month on book or an earlier one observed.
    """
    _check_non_negative("threshold_days", threshold_days)
    book = _loans_by_id(loans)
    dpd: dict[str, dict[int, int]] = {loan_id: {} for loan_id in book}
    for seen in observations:
        if seen.loan_id not in book:
            raise ValidationFailed("observations", "known-loan", f"no loan {seen.loan_id}")
        if seen.months_on_book in dpd[seen.loan_id]:
            raise ValidationFailed(
                "observations", "unique", f"{seen.loan_id} twice at MOB {seen.months_on_book}"
            )
        dpd[seen.loan_id][seen.months_on_book] = seen.days_past_due
    cohorts = sorted({loan.cohort for loan in book.values()})
    members = {c: [loan for loan in book.values() if loan.cohort == c] for c in cohorts}
    principal = {c: sum((loan.original_principal for loan in members[c]), ZERO) for c in cohorts}
    amount_share: dict[str, dict[int, Decimal]] = {}
    count_share: dict[str, dict[int, Decimal]] = {}
    for c in cohorts:
        mobs = sorted({mob for loan in members[c] for mob in dpd[loan.loan_id]})
        amount_share[c], count_share[c] = {}, {}
        for mob in mobs:
            bad = [
                loan
                for loan in members[c]
                if _delinquent(dpd[loan.loan_id], mob, threshold_days, cumulative)
            ]
            bad_principal = sum((loan.original_principal for loan in bad), ZERO)
            amount_share[c][mob] = _share(bad_principal, principal[c])
            count_share[c][mob] = _share(Decimal(len(bad)), Decimal(len(members[c])))
    return VintageTable(
        threshold_days=threshold_days,
        cumulative=cumulative,
        cohorts=tuple(cohorts),
        loans={c: len(members[c]) for c in cohorts},
        principal=principal,
        amount_share=amount_share,
        count_share=count_share,
    )


def _loans_by_id(loans: Iterable[CohortLoan]) -> dict[str, CohortLoan]:
    book: dict[str, CohortLoan] = {}
    for loan in loans:
        if loan.loan_id in book:
            raise ValidationFailed("loans", "unique-loan", f"loan {loan.loan_id} appears twice")
        book[loan.loan_id] = loan
    return book


def _delinquent(history: Mapping[int, int], mob: int, threshold: int, cumulative: bool) -> bool:
    if cumulative:
        return any(days >= threshold for at, days in history.items() if at <= mob)
    return history.get(mob, 0) >= threshold


def _share(numerator: Decimal, denominator: Decimal) -> Decimal:
    share = ratio(numerator, denominator)
    assert share is not None  # a cohort has at least one loan of positive principal
    return share


# --- PAR, NPL, collection rate ---------------------------------------------------------------


@dataclass(frozen=True)
class LoanPosition:
    """A loan on book today: outstanding principal, days past due, five-tier classification."""

    outstanding_principal: Decimal
    days_past_due: int = 0
    classification: str | None = None  # one of CLASSIFICATIONS; needed for npl_ratio

    def __post_init__(self) -> None:
        value = _amount("outstanding_principal", self.outstanding_principal)
        object.__setattr__(self, "outstanding_principal", value)
        _check_non_negative("days_past_due", self.days_past_due)
        if self.classification is not None and self.classification not in CLASSIFICATIONS:
            raise ValidationFailed(
                "classification", "one-of", f"classification is one of {CLASSIFICATIONS}"
            )


def par(positions: Sequence[LoanPosition], *, days: int = 30) -> Decimal | None:
    """Portfolio at risk: principal of loans `days`+ past due / all outstanding principal."""
    _check_non_negative("days", days)
    total = sum((p.outstanding_principal for p in positions), ZERO)
    at_risk = sum((p.outstanding_principal for p in positions if p.days_past_due >= days), ZERO)
    return ratio(at_risk, total)


def par30(positions: Sequence[LoanPosition]) -> Decimal | None:
    return par(positions, days=30)


def npl_ratio(positions: Sequence[LoanPosition]) -> Decimal | None:
    """(substandard + doubtful + loss) outstanding principal / all outstanding principal."""
    if any(p.classification is None for p in positions):
        raise ValidationFailed("classification", "required", "every loan needs a classification")
    total = sum((p.outstanding_principal for p in positions), ZERO)
    bad = sum(
        (p.outstanding_principal for p in positions if p.classification in NON_PERFORMING), ZERO
    )
    return ratio(bad, total)


@dataclass(frozen=True)
class InstallmentDue:
    """An installment: what fell due on due_date and what has been collected against it."""

    due_date: date
    amount_due: Decimal
    amount_collected: Decimal = ZERO

    def __post_init__(self) -> None:
        due = _amount("amount_due", self.amount_due)
        collected = _amount("amount_collected", self.amount_collected)
        if collected > due:
            raise ValidationFailed(
                "amount_collected", "not-above-due", f"collected {collected} > due {due}"
            )
        object.__setattr__(self, "amount_due", due)
        object.__setattr__(self, "amount_collected", collected)


def collection_rate(
    installments: Sequence[InstallmentDue], *, start: date, end: date
) -> Decimal | None:
    """Collected / due, over the installments due from start to end inclusive."""
    if end < start:
        raise ValidationFailed("end", "not-before-start", "the period ends after it starts")
    in_period = [i for i in installments if start <= i.due_date <= end]
    due = sum((i.amount_due for i in in_period), ZERO)
    collected = sum((i.amount_collected for i in in_period), ZERO)
    return ratio(collected, due)


def _amount(field: str, value: object) -> Decimal:
    return parse_amount(value, field=field, allow_zero=True)


def _check_id(value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationFailed("loan_id", "required", "loan_id is a non-empty string")


def _check_non_negative(field: str, value: object) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValidationFailed(field, "non-negative", f"{field} is a whole number >= 0")
