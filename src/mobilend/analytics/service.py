"""Portfolio figures from the database: totals by GROUP BY in SQL, ratios by analytics.portfolio.

No function here loads the loans one by one: each query returns one row per group (a DPD value,
a pair of buckets, a disbursement day and snapshot date, a due date), so its size does not grow
with the book. PAR, the NPL ratio and the collection rate are sums over loans, so each group is
handed to the pure module as one row; roll rates and vintages follow each loan across
snapshots, so SQL counts the cells and the pure module's helpers round them (tests check that
both ways agree on the same data).

Every function takes the caller's session, an as-of business date and a Scope (a product
code, a currency). Amounts in different currencies are never added: a selection holding more
than one currency is refused until a currency is chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, exists, func, null, select
from sqlalchemy.orm import Session, aliased

from mobilend.analytics import portfolio
from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.core.money import CENT, ZERO
from mobilend.loans.models import Allocation, Installment, Loan, Product, Repayment
from mobilend.servicing.models import DelinquencySnapshot, LoanDelinquency

TIERS = ("normal", "special_mention", "substandard", "doubtful", "loss")  # servicing LoanClass
_PURE_TIER = {"normal": "pass"}  # servicing says "normal" where portfolio.py says "pass"
DEFAULT_PAR_DAYS = (1, 30, 60, 90)
COLLECTED = ("principal", "interest", "fee")  # penalty is charged for lateness, never "due"
Snap = DelinquencySnapshot
S = TypeVar("S", bound=Select)  # type: ignore[type-arg]
K = TypeVar("K")


@dataclass(frozen=True)
class Scope:
    """Which loans: all of them, one product's, one currency's, or both."""

    product_code: str | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.currency is not None and not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValidationFailed("currency", "iso-4217", "currency is 3 capital letters: CNY")

    def apply(self, session: Session, stmt: S) -> S:
        """Filter a statement that selects from or joins `loans`."""
        if self.product_code is not None:
            product_id = session.scalar(select(Product.id).where(Product.code == self.product_code))
            if product_id is None:
                raise NotFound(f"product {self.product_code!r} not found", field="product_code")
            stmt = stmt.where(Loan.product_id == product_id)
        if self.currency is not None:
            stmt = stmt.where(Loan.currency == self.currency)
        return stmt

    def currency_of(self, currencies: set[str]) -> str | None:
        if len(currencies) > 1:
            found = ", ".join(sorted(currencies))
            raise ValidationFailed(
                "currency", "single-currency", f"the loans are in {found}; choose a currency"
            )
        return next(iter(currencies), self.currency)


def cents(value: object) -> Decimal:
    """A SUM from the database as exact cents (SQLite sums NUMERIC as binary floats)."""
    return ZERO.quantize(CENT) if value is None else Decimal(str(value)).quantize(CENT)


def _on_loans(table: type[LoanDelinquency] | type[Snap], *columns: Any) -> Select[Any]:
    return select(*columns).select_from(table).join(Loan, Loan.id == table.loan_id)


def _last_date(
    session: Session, table: type[LoanDelinquency] | type[Snap], scope: Scope, *where: Any
) -> date | None:
    """The latest business date of the table's rows in scope (whole book: no join, an index
    scan on the snapshots' primary key)."""
    column = func.max(table.business_date)
    whole_book = scope.product_code is None and scope.currency is None
    stmt = select(column).where(*where) if whole_book else _on_loans(table, column).where(*where)
    last: date | None = session.scalar(scope.apply(session, stmt))
    return last


# --- summary: PAR, NPL, buckets, five tiers, provisions -------------------------------------


@dataclass(frozen=True)
class Tally:
    """Loans and their amounts; exposure and provision are None for a month-end snapshot."""

    loans: int = 0
    outstanding_principal: Decimal = ZERO
    exposure: Decimal | None = ZERO
    provision: Decimal | None = ZERO

    def plus(self, n: int, principal: Decimal, exposure: Decimal, provision: Decimal) -> Tally:
        return Tally(
            self.loans + n,
            self.outstanding_principal + principal,
            None if self.exposure is None else self.exposure + exposure,
            None if self.provision is None else self.provision + provision,
        )


@dataclass(frozen=True)
class Summary:
    """The book at a close. source: "loan_delinquency" (the last close) or
    "month_end_snapshot" (an earlier month-end: no exposure or provision); None: no close."""

    as_of: date
    close_date: date | None
    source: str | None
    currency: str | None
    total: Tally
    par: dict[int, Decimal | None]
    npl_principal: Decimal
    npl_ratio: Decimal | None
    by_bucket: dict[str, Tally] = field(default_factory=dict)
    by_class: dict[str, Tally] = field(default_factory=dict)


def summary(
    session: Session,
    *,
    as_of: date,
    scope: Scope | None = None,
    par_days: Sequence[int] = DEFAULT_PAR_DAYS,
) -> Summary:
    """PAR(n) for each n in par_days, the NPL ratio, and totals by bucket and by tier.

    From `loan_delinquency` at the last close if that close is on or before as_of; otherwise
    from the last month-end snapshot on or before as_of; otherwise an empty book.
    """
    scope = scope or Scope()
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in par_days):
        raise ValidationFailed("par_days", "non-negative", "par_days are whole days >= 0")
    days = sorted(set(par_days))
    table: type[LoanDelinquency] | type[Snap] = LoanDelinquency
    last = _last_date(session, table, scope)
    if last is None or last > as_of:
        table = Snap
        last = _last_date(session, Snap, scope, Snap.business_date <= as_of)
    if last is None:
        return _summary_of([], as_of, None, None, scope, days)
    amounts = (
        (func.sum(LoanDelinquency.exposure), func.sum(LoanDelinquency.provision))
        if table is LoanDelinquency
        else (null(), null())
    )
    group = (Loan.currency, table.bucket, table.loan_class, table.dpd)
    stmt = _on_loans(
        table, *group, func.count(), func.sum(table.outstanding_principal), *amounts
    ).where(table.business_date == last)
    rows = session.execute(scope.apply(session, stmt).group_by(*group)).all()
    source = "loan_delinquency" if table is LoanDelinquency else "month_end_snapshot"
    return _summary_of(rows, as_of, last, source, scope, days)


def _summary_of(
    rows: Sequence[Any],
    as_of: date,
    close_date: date | None,
    source: str | None,
    scope: Scope,
    days: Sequence[int],
) -> Summary:
    empty = Tally(exposure=None, provision=None) if source == "month_end_snapshot" else Tally()
    total, by_bucket, by_class = empty, dict[str, Tally](), dict.fromkeys(TIERS, empty)
    lowest_dpd: dict[str, int] = {}
    positions: list[portfolio.LoanPosition] = []
    for _, bucket, loan_class, dpd, n, principal, exposure, provision in rows:
        amounts = (cents(principal), cents(exposure), cents(provision))
        tier = _PURE_TIER.get(loan_class, loan_class)
        positions.append(portfolio.LoanPosition(amounts[0], dpd, tier))
        total = total.plus(n, *amounts)
        by_bucket[bucket] = by_bucket.get(bucket, empty).plus(n, *amounts)
        by_class[loan_class] = by_class.get(loan_class, empty).plus(n, *amounts)
        lowest_dpd[bucket] = min(dpd, lowest_dpd.get(bucket, dpd))
    npl = [t for c, t in by_class.items() if _PURE_TIER.get(c, c) in portfolio.NON_PERFORMING]
    return Summary(
        as_of=as_of,
        close_date=close_date,
        source=source,
        currency=scope.currency_of({row[0] for row in rows}),
        total=total,
        par={n: portfolio.par(positions, days=n) for n in days},
        npl_principal=sum((t.outstanding_principal for t in npl), ZERO),
        npl_ratio=portfolio.npl_ratio(positions),
        by_bucket={b: by_bucket[b] for b in sorted(by_bucket, key=lambda b: (lowest_dpd[b], b))},
        by_class=by_class,
    )


# --- roll rates between two month-end snapshots ----------------------------------------------


@dataclass(frozen=True)
class RollFigures:
    previous: date
    current: date
    currency: str | None
    matrix: portfolio.RollRates


def roll_rates(
    session: Session, *, as_of: date, previous: date | None = None, scope: Scope | None = None
) -> RollFigures:
    """Roll rates from the `previous` month-end snapshot (default: the one before) to the last
    snapshot on or before as_of, by balance and by count. Buckets are the snapshots' own
    labels, ordered by the lowest DPD seen in each."""
    scope = scope or Scope()
    current = _last_date(session, Snap, scope, Snap.business_date <= as_of)
    if current is None:
        raise NotFound(f"no month-end snapshot on or before {as_of}", field="as_of")
    if previous is None:
        previous = _last_date(session, Snap, scope, Snap.business_date < current)
        if previous is None:
            raise NotFound(f"no month-end snapshot before {current}", field="previous")
    elif previous >= current:
        raise ValidationFailed(
            "previous", "before-current", f"previous must be before the snapshot of {current}"
        )
    elif not session.scalar(
        scope.apply(
            session, _on_loans(Snap, Snap.loan_id).where(Snap.business_date == previous)
        ).limit(1)
    ):
        raise NotFound(f"no month-end snapshot on {previous}", field="previous")
    before, after = aliased(Snap), aliased(Snap)
    cell = (Loan.currency, before.bucket, after.bucket)
    stmt = (
        select(
            *cell,
            func.count(),
            func.sum(before.outstanding_principal),
            func.min(before.dpd),
            func.min(after.dpd),
        )
        .select_from(before)
        .join(Loan, Loan.id == before.loan_id)
        .outerjoin(after, and_(after.loan_id == before.loan_id, after.business_date == current))
        .where(before.business_date == previous)
    )
    cells = session.execute(scope.apply(session, stmt).group_by(*cell)).all()
    was_there = exists().where(before.loan_id == after.loan_id, before.business_date == previous)
    arrived = (
        select(
            Loan.currency,
            after.bucket,
            func.count(),
            func.sum(after.outstanding_principal),
            func.min(after.dpd),
        )
        .select_from(after)
        .join(Loan, Loan.id == after.loan_id)
        .where(after.business_date == current, ~was_there)
    )
    new = session.execute(scope.apply(session, arrived).group_by(Loan.currency, after.bucket)).all()
    seen = [(r[1], r[5]) for r in cells] + [(r[2], r[6]) for r in cells]
    lowest: dict[str, int] = {}
    for bucket, dpd in seen + [(r[1], r[4]) for r in new]:
        if bucket is not None:  # a previous loan with no bucket now has closed
            lowest[bucket] = min(dpd, lowest.get(bucket, dpd))
    currency = scope.currency_of({row[0] for row in cells} | {row[0] for row in new})
    matrix = portfolio.roll_matrix(
        {(a, b or portfolio.CLOSED): n for _, a, b, n, *_ in cells},
        {(a, b or portfolio.CLOSED): cents(amount) for _, a, b, _, amount, *_ in cells},
        buckets=sorted(lowest, key=lambda bucket: (lowest[bucket], bucket)),
        new_count=sum(row[2] for row in new),
        new_balance=sum((cents(row[3]) for row in new), ZERO),
    )
    return RollFigures(previous=previous, current=current, currency=currency, matrix=matrix)


# --- vintage curves --------------------------------------------------------------------------


@dataclass(frozen=True)
class VintageFigures:
    as_of: date
    currency: str | None
    snapshots: tuple[date, ...]  # the month-end snapshots read (the last of each month)
    table: portfolio.VintageTable


def vintages(
    session: Session,
    *,
    as_of: date,
    threshold_days: int = 30,
    cumulative: bool = False,
    scope: Scope | None = None,
) -> VintageFigures:
    """Each disbursement month's share (by amount and count) `threshold_days`+ past due at each
    month on book, from the month-end snapshots up to as_of (see portfolio.vintage_curves).

    A cohort is every loan disbursed that month up to as_of, also those never in a snapshot
    (paid off within the month): they count as not delinquent. SQL groups by disbursement day
    and snapshot date (cheap to compare, a few thousand groups); months are folded here.
    """
    scope = scope or Scope()
    portfolio.vintage_curves([], [], threshold_days=threshold_days)  # the pure module's checks
    used = _month_ends(session, as_of)
    stmt = select(Loan.currency, Loan.disbursed_on, func.count(), func.sum(Loan.principal))
    stmt = stmt.where(Loan.disbursed_on.is_not(None), Loan.disbursed_on <= as_of)
    by_day = scope.apply(session, stmt).group_by(Loan.currency, Loan.disbursed_on)
    rows: list[Any] = list(session.execute(by_day))
    currency = scope.currency_of({row[0] for row in rows})
    cohorts = _fold((portfolio.cohort_of(row[1]), row[2], row[3]) for row in rows)
    bad, at_month_end = Snap.dpd >= threshold_days, Snap.business_date.in_(used)
    group = (Snap.disbursed_on, Snap.business_date)
    stmt = _on_loans(
        Snap,
        *group,
        func.sum(case((bad, 1), else_=0)),
        func.sum(case((bad, Loan.principal), else_=0)),
    ).where(at_month_end)
    observed = _by_month_on_book(session.execute(scope.apply(session, stmt).group_by(*group)))
    if cumulative:  # each loan's first month-end at or past the threshold, by cohort
        first = select(Snap.loan_id, func.min(Snap.business_date).label("day"))
        firsts = first.where(at_month_end, bad).group_by(Snap.loan_id).subquery()
        turned = (
            select(Loan.disbursed_on, firsts.c.day, func.count(), func.sum(Loan.principal))
            .select_from(firsts)
            .join(Loan, Loan.id == firsts.c.loan_id)
        )
        turned = scope.apply(session, turned).group_by(Loan.disbursed_on, firsts.c.day)
        observed = _ever(observed, _by_month_on_book(session.execute(turned)))
    table = portfolio.VintageTable(
        threshold_days=threshold_days,
        cumulative=cumulative,
        cohorts=tuple(sorted(cohorts)),
        loans={c: n for c, (n, _) in cohorts.items()},
        principal={c: p for c, (_, p) in cohorts.items()},
        amount_share={c: _shares(observed, c, cohorts[c][1], 1) for c in cohorts},
        count_share={c: _shares(observed, c, Decimal(cohorts[c][0]), 0) for c in cohorts},
    )
    return VintageFigures(as_of=as_of, currency=currency, snapshots=used, table=table)


def _month_ends(session: Session, as_of: date) -> tuple[date, ...]:
    """The snapshot dates up to as_of, the last of each month (the month-end close's)."""
    last: dict[str, date] = {}
    stmt = select(Snap.business_date).where(Snap.business_date <= as_of).distinct()
    for day in session.scalars(stmt):
        last[portfolio.cohort_of(day)] = max(day, last.get(portfolio.cohort_of(day), day))
    return tuple(sorted(last.values()))


def _by_month_on_book(rows: Iterable[Any]) -> dict[tuple[str, int], tuple[int, Decimal]]:
    """(disbursement day, snapshot date, loans, amount) groups by cohort and month on book."""
    return _fold(
        ((portfolio.cohort_of(on), portfolio.months_on_book(on, day)), n, amount)
        for on, day, n, amount in rows
    )


def _fold(groups: Iterable[tuple[K, Any, Any]]) -> dict[K, tuple[int, Decimal]]:
    """Add up (key, count, amount) groups by key."""
    out: dict[K, tuple[int, Decimal]] = {}
    for key, n, amount in groups:
        count, total = out.get(key, (0, ZERO))
        out[key] = (count + int(n), total + cents(amount))
    return out


def _ever(
    observed: dict[tuple[str, int], tuple[int, Decimal]],
    turned: dict[tuple[str, int], tuple[int, Decimal]],
) -> dict[tuple[str, int], tuple[int, Decimal]]:
    """ "Ever past the threshold" at each observed month on book: the loans (and principal)
    that first reached it (`turned`, by cohort and month on book) at or before it."""
    return {
        (c, at): (
            sum(n for (cohort, k), (n, _) in turned.items() if cohort == c and k <= at),
            sum((p for (cohort, k), (_, p) in turned.items() if cohort == c and k <= at), ZERO),
        )
        for c, at in observed
    }


def _shares(
    observed: dict[tuple[str, int], tuple[int, Decimal]], cohort: str, whole: Decimal, i: int
) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    for (c, at), part in sorted(observed.items()):
        if c == cohort:
            share = portfolio.ratio(Decimal(part[i]), whole)
            assert share is not None  # a cohort has at least one loan of positive principal
            out[at] = share
    return out


# --- collection rate -------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionFigures:
    start: date
    end: date
    as_of: date
    currency: str | None
    installments: int
    amount_due: Decimal
    collected: Decimal
    rate: Decimal | None


def collection_rate(
    session: Session, *, start: date, end: date, as_of: date, scope: Scope | None = None
) -> CollectionFigures:
    """Of the installments due from start to end (inclusive) on disbursed loans, the amount
    due (principal + interest + fee as scheduled) and what repayments valued on or before
    as_of paid against them (capped at each installment's amount due); see
    portfolio.collection_rate."""
    scope = scope or Scope()
    portfolio.collection_rate([], start=start, end=end)  # the pure module checks the period
    if as_of < end:
        raise ValidationFailed(
            "as_of", "not-before-end", f"the period ends {end}, after the business date {as_of}"
        )
    in_period = and_(
        Installment.due_date >= start, Installment.due_date <= end, Installment.cancelled.is_(False)
    )
    paid = (
        select(Installment.id.label("installment_id"), func.sum(Allocation.amount).label("amount"))
        .select_from(Allocation)
        .join(Repayment, Repayment.id == Allocation.repayment_id)
        .join(
            Installment,
            and_(
                Installment.loan_id == Repayment.loan_id,
                Installment.number == Allocation.installment_number,
            ),
        )
        .where(
            in_period,
            Allocation.entry_id == Repayment.entry_id,  # its current application, not unwound
            Repayment.status == "posted",
            Repayment.value_date <= as_of,
            Allocation.component.in_(COLLECTED),
        )
        .group_by(Installment.id)
        .subquery()
    )
    due = Installment.principal + Installment.interest + Installment.fee
    got = func.coalesce(paid.c.amount, 0)
    stmt = (
        select(
            Loan.currency,
            Installment.due_date,
            func.count(),
            func.sum(due),
            func.sum(case((got > due, due), else_=got)),
        )
        .select_from(Installment)
        .join(Loan, Loan.id == Installment.loan_id)
        .outerjoin(paid, paid.c.installment_id == Installment.id)
        .where(in_period, Loan.disbursed_on.is_not(None))
    )
    rows = session.execute(
        scope.apply(session, stmt).group_by(Loan.currency, Installment.due_date)
    ).all()
    items = [portfolio.InstallmentDue(day, cents(d), cents(c)) for _, day, _, d, c in rows]
    return CollectionFigures(
        start=start,
        end=end,
        as_of=as_of,
        currency=scope.currency_of({row[0] for row in rows}),
        installments=sum(n for _, _, n, _, _ in rows),
        amount_due=sum((i.amount_due for i in items), ZERO),
        collected=sum((i.amount_collected for i in items), ZERO),
        rate=portfolio.collection_rate(items, start=start, end=end),
    )
