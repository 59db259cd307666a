"""A book of active loans for the daily-close benchmark, faithful to the Decimal path.

`generate` fills an already migrated PostgreSQL database with `loans` active loans whose
installments, loan rows and journal are exactly what the services would hold after the close
of `business_date - 1`:

1. a few hundred *template* loans are booked through the real services (mobilend.loans.service:
   create_loan, disburse, accrue, repay, prepay) under four products that differ in day count
   (act/365, act/360), interest basis, penalty rate, late fee, installment and upfront fees,
   waterfall strategy, business-day rule and servicing policy. Each is booked over the 12 months
   before the business date with 3-12 monthly installments; due installments are paid on the
   due date or a few days late (penalty, late fee past the grace days), a few loans prepay part
   of the principal, and 7% stop paying so that they are 2 to 200 days past due on the business
   date (a third of those after a partial payment): every bucket M1/M2/M3+ occurs, and the five
   tiers normal, special mention and substandard, plus doubtful and loss under the product with
   stricter thresholds. Every template is accrued through business_date - 1;
2. the templates are cloned set-based (INSERT ... SELECT over generate_series) into `loans`
   loans: loans, installments, journal entries and lines, repayments and allocations, each id
   shifted by a multiple of the templates' id span, so loan ids stay dense (template t's k-th
   copy is loan base + k * T + t) and every id range holds the same mix. Copies of balanced,
   consistent rows are balanced and consistent; with `fast_load` the per-row triggers (foreign
   keys and the ledger's deferred zero-sum trigger of migration 0002) are skipped while copying
   (session_replication_role = replica, which needs a superuser) and the copies are checked
   set-based afterwards instead (`verify`).

The accrual history of a template is what the services post: one accrual entry at each
repayment's value date and one through business_date - 1, not one a day. Totals and the
penalty carry do not depend on the steps; with two overdue installments at once the split of
the penalty between them can differ by a cent from a day-by-day accrual. No transparency-log
leaves, pledges or delinquency rows are written for the book.

`bare_accrual_update` times the baseline of the issue: one UPDATE of the day's cumulative
interest on the current installments plus one advancing loans.accrued_through, rolled back.

    .venv/bin/python bench/portfolio.py --loans 10000 [--db postgresql+psycopg://...] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import common
import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from mobilend.core.dates import add_months
from mobilend.core.errors import NotFound
from mobilend.core.money import CENT, ZERO
from mobilend.db.migrate import upgrade
from mobilend.db.session import build_engine, normalize_url, unit_of_work
from mobilend.ledger.accounts import Account
from mobilend.loans import service as loans_service
from mobilend.loans.models import Installment, Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.loans.terms import BusinessDayRule, DayCount, InterestPeriod, ScheduleType
from mobilend.servicing.classification import class_by_dpd
from mobilend.servicing.policy import ServicingPolicy

D = Decimal
DEFAULT_TEMPLATES = 400
OVERDUE_SHARE = 0.07
CHUNK_LOANS = 50_000  # cloned loans per transaction
TEMPLATES_PER_UNIT = 50  # template loans booked per unit of work
Progress = Callable[[str], None]

PRODUCTS: dict[str, tuple[str, float, tuple[int, int], ProductConfig]] = {
    # code: (name, share of the templates, principal range, config)
    "bench-pawn": (
        "Phone pawn loan",
        0.4,
        (1000, 4000),
        ProductConfig(
            annual_rate_pct=D("18"),
            max_annual_rate_pct=D("24"),
            penalty_rate_pct=D("18"),
            late_fee=D("30"),
            late_fee_grace_days=3,
            min_principal=D("500"),
            max_principal=D("10000"),
        ),
    ),
    "bench-lock": (
        "Device-lock phone financing",
        0.3,
        (1000, 6000),
        ProductConfig(
            interest_period=InterestPeriod.DAILY,
            day_count=DayCount.ACT_360,
            annual_rate_pct=D("14"),
            penalty_rate_pct=D("21"),
            installment_fee=D("2"),
            business_day_rule=BusinessDayRule.NEXT,
            prepayment_mode="reduce_term",
            min_principal=D("500"),
            max_principal=D("10000"),
        ),
    ),
    "bench-app": (
        "App credit loan (stricter classification)",
        0.2,
        (1000, 3000),
        ProductConfig(
            annual_rate_pct=D("12"),
            penalty_rate_pct=D("24"),
            late_fee=D("20"),
            late_fee_grace_days=1,
            installment_fee=D("3"),
            min_principal=D("500"),
            max_principal=D("10000"),
            servicing_policy=ServicingPolicy(
                special_mention_after=0, substandard_after=60, doubtful_after=90, loss_after=150
            ),
        ),
    ),
    "bench-merchant": (
        "Merchant loan (equal principal)",
        0.1,
        (3000, 30000),
        ProductConfig(
            schedule=ScheduleType.EQUAL_PRINCIPAL,
            interest_period=InterestPeriod.DAILY,
            day_count=DayCount.ACT_360,
            annual_rate_pct=D("20"),
            penalty_rate_pct=D("30"),
            late_fee=D("50"),
            upfront_fee=D("30"),
            apr_cap_pct=D("36"),
            allocation_strategy="vertical",
            min_principal=D("3000"),
            max_principal=D("50000"),
        ),
    ),
}
STRICT = "bench-app"
# Days past due of the overdue templates, cycled: (low, high, product: None any, "default" any
# but the strict one, or a code). Margins keep a due date moved to the next business day
# inside its bucket and tier.
STRATA: tuple[tuple[int, int, str | None], ...] = (
    (2, 28, None),  # M1
    (2, 28, None),  # M1
    (2, 28, None),  # M1
    (36, 56, None),  # M2
    (100, 200, "default"),  # M3+ substandard
    (100, 140, STRICT),  # doubtful under the strict product
    (160, 200, STRICT),  # loss under the strict product
)


def log(message: str) -> None:
    print(f"[portfolio] {message}", flush=True)


# ---------------------------------------------------------------- template plans


@dataclass(frozen=True)
class Plan:
    """One template loan's life: its booking and how its borrower pays."""

    product: str
    principal: Decimal
    periods: int
    start: date
    seed: int  # late payments drawn from random.Random(seed) while booking
    late_share: float = 0.0  # share of installments paid 1-8 days late
    stop_date: date | None = None  # installments due on or after it are not paid (overdue)
    partial_share: Decimal | None = None  # of the first missed installment, paid late
    prepay_after: int | None = None  # payments after which part of the principal is prepaid


def plan_templates(count: int, business_date: date, seed: int) -> list[Plan]:
    """`count` template plans; 7% (at least one per stratum) overdue on `business_date`."""
    rng = random.Random(seed)
    overdue = min(count, max(len(STRATA), round(count * OVERDUE_SHARE)))
    strata: list[int | None] = [i % len(STRATA) for i in range(overdue)]
    strata += [None] * (count - overdue)
    rng.shuffle(strata)
    return [_plan(rng, business_date, stratum) for stratum in strata]


def _pick_product(rng: random.Random, which: str | None) -> str:
    if which is not None and which != "default":
        return which
    codes = [c for c in PRODUCTS if which is None or c != STRICT]
    return rng.choices(codes, weights=[PRODUCTS[c][1] for c in codes])[0]


def _principal(rng: random.Random, product: str) -> Decimal:
    low, high = PRODUCTS[product][2]
    return D(rng.randrange(low, high + 1, 100))


def _plan(rng: random.Random, business_date: date, stratum: int | None) -> Plan:
    last_closed = business_date - timedelta(days=1)
    earliest = business_date - timedelta(days=365)
    late_share = rng.choice([0.0, 0.0, 0.0, 0.1, 0.3])
    if stratum is None:  # a current loan: not yet matured
        product = _pick_product(rng, None)
        start = business_date - timedelta(days=rng.randint(1, 365))
        due = sum(1 for k in range(1, 13) if add_months(start, k) <= last_closed)
        prepay = rng.randint(1, due - 1) if due >= 2 and rng.random() < 0.04 else None
        return Plan(
            product,
            _principal(rng, product),
            rng.randint(max(3, due + 1), 12),
            start,
            rng.randrange(2**31),
            late_share,
            prepay_after=prepay,
        )
    low, high, which = STRATA[stratum]
    product = _pick_product(rng, which)
    dpd = rng.randint(low, high)
    missed_due = business_date - timedelta(days=dpd)
    k_max = max(k for k in range(1, 13) if add_months(missed_due, -k) >= earliest)
    k = rng.randint(1, k_max)  # the first installment left unpaid
    start = add_months(missed_due, -k)
    partial = D(rng.choice(["0.3", "0.5", "0.7"])) if rng.random() < 1 / 3 else None
    return Plan(
        product,
        _principal(rng, product),
        rng.randint(max(3, k), 12),
        start,
        rng.randrange(2**31),
        late_share,
        stop_date=add_months(start, k),
        partial_share=partial,
    )


# ---------------------------------------------------------------- booking through the services


def ensure_products(session: Session) -> dict[str, int]:
    """The bench products (created through create_product when missing): code -> id."""
    ids = {}
    for code, (name, _, _, config) in PRODUCTS.items():
        try:
            product = loans_service.get_product(session, code)
        except NotFound:
            product = loans_service.create_product(
                session, ProductIn(code=code, name=name, config=config)
            )
        ids[code] = product.id
    return ids


def _live(loan: Loan) -> list[Installment]:
    return sorted(
        (i for i in loan.installments if not i.cancelled), key=lambda i: (i.due_date, i.number)
    )


def _settled(i: Installment) -> bool:
    return bool(
        i.paid_principal >= i.principal
        and i.paid_interest >= i.interest
        and i.paid_fee >= max(i.fee, i.fee_charged)
        and i.paid_penalty >= i.penalty_charged
    )


def _owed_through(loan: Loan, day: date) -> Decimal:
    """What is charged and unpaid on the installments due by `day` (after accrual to it)."""
    owed: Decimal = sum(
        (
            (i.principal - i.paid_principal)
            + (i.interest_accrued - i.paid_interest)
            + (i.fee_charged - i.paid_fee)
            + (i.penalty_charged - i.paid_penalty)
            for i in _live(loan)
            if i.due_date <= day
        ),
        ZERO,
    )
    return owed


def _pay(session: Session, loan: Loan, on: date, share: Decimal = D(1)) -> None:
    """Pay `share` of what is due on `on` (repay accrues to `on` first, as the API does)."""
    due = [i for i in _live(loan) if i.due_date <= on and not _settled(i)]
    if share == 1 and all(i.due_date == on for i in due):
        # on time with nothing overdue: what falls due is the schedule's own figures (no
        # penalty, no late fee), so the accrual is left to repay (one lock, not two)
        amount = sum(
            (
                i.principal + i.interest + i.fee - i.paid_principal - i.paid_interest - i.paid_fee
                for i in due
            ),
            ZERO,
        )
    else:
        loans_service.accrue(session, loan_id=loan.id, through=on)
        amount = (_owed_through(loan, on) * share).quantize(CENT)
    if amount <= 0:
        return
    repayment = loans_service.repay(
        session, loan_id=loan.id, amount=amount, value_date=on, business_date=on
    )
    if repayment.unallocated or (share == 1 and not all(_settled(i) for i in due)):
        raise RuntimeError(f"loan {loan.id}: the payment of {amount} on {on} is not what was due")


def book_template(session: Session, plan: Plan, business_date: date) -> Loan:
    """Book, disburse and service one template loan through business_date - 1."""
    last_closed = business_date - timedelta(days=1)
    rng = random.Random(plan.seed)
    loan = loans_service.create_loan(
        session,
        LoanIn(
            product_code=plan.product,
            principal=plan.principal,
            periods=plan.periods,
            start_date=plan.start,
            borrower_ref="bench-template",
        ),
    )
    loans_service.disburse(session, loan_id=loan.id, value_date=plan.start)
    payments = 0
    while True:
        unsettled = [i for i in _live(loan) if not _settled(i)]
        if not unsettled or unsettled[0].due_date > last_closed:
            break
        due = unsettled[0].due_date
        if plan.stop_date is not None and due >= plan.stop_date:
            partial_on = due + timedelta(days=rng.randint(1, 15))
            if plan.partial_share is not None and partial_on <= last_closed:
                _pay(session, loan, partial_on, plan.partial_share)
            break
        late = rng.randint(1, 8) if rng.random() < plan.late_share else 0
        paid_on = min(due + timedelta(days=late), last_closed)
        _pay(session, loan, paid_on)
        payments += 1
        if payments == plan.prepay_after:
            _prepay(session, loan, paid_on + timedelta(days=rng.randint(5, 15)), rng, last_closed)
    loans_service.accrue(session, loan_id=loan.id, through=last_closed)
    if loan.status != "active" or loan.accrued_through != last_closed:
        raise RuntimeError(f"template loan {loan.id} is {loan.status}, plan {plan}")
    return loan


def _prepay(session: Session, loan: Loan, on: date, rng: random.Random, last_closed: date) -> None:
    """A partial prepayment of 20-50% of the future principal, before the next due date."""
    future = [i for i in _live(loan) if i.due_date > on]
    if on > last_closed or not future:
        return
    if any(not _settled(i) for i in _live(loan) if i.due_date <= on):
        return  # the next installment fell due first
    principal = sum((i.principal - i.paid_principal for i in future), ZERO)
    amount = (principal * D(rng.choice(["0.2", "0.3", "0.5"]))).quantize(D(1))
    loans_service.prepay(session, loan_id=loan.id, value_date=on, business_date=on, amount=amount)


def book_templates(
    engine: Engine, plans: Sequence[Plan], business_date: date, progress: Progress = log
) -> tuple[int, int]:
    """Book the templates (loan ids base + 1 .. base + len(plans)); returns (base, overdue).

    Sessions come from a plain sessionmaker: the services, without the transparency-log and
    audit hooks of `session_factory` (the cloned book has no log leaves either)."""
    factory = sessionmaker(engine, expire_on_commit=False, autoflush=True)
    with unit_of_work(factory) as s:
        ensure_products(s)
        base = (
            s.connection()
            .exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('loans', 'id'), coalesce(max(id), 0) + 1,"
                " false) - 1 FROM loans"
            )
            .scalar_one()
        )
    booked: list[int] = []
    t0 = time.perf_counter()
    for first in range(0, len(plans), TEMPLATES_PER_UNIT):
        with unit_of_work(factory) as s:
            for plan in plans[first : first + TEMPLATES_PER_UNIT]:
                booked.append(book_template(s, plan, business_date).id)
                s.flush()
                s.expunge_all()
        progress(
            f"{len(booked):,}/{len(plans):,} templates booked ({time.perf_counter() - t0:.1f} s)"
        )
    if booked != list(range(base + 1, base + len(plans) + 1)):
        raise RuntimeError("template loan ids are not contiguous: another writer on the database?")
    return int(base), sum(1 for p in plans if p.stop_date is not None)


# ---------------------------------------------------------------- cloning, set-based

# The tables cloned, in foreign-key order, and their columns holding ids of cloned tables.
ID_COLUMNS: dict[str, dict[str, str]] = {
    "loans": {"id": "loans"},
    "installments": {"id": "installments", "loan_id": "loans"},
    "journal_entries": {
        "id": "journal_entries",
        "loan_id": "loans",
        "reverses_id": "journal_entries",
    },
    "journal_lines": {"id": "journal_lines", "entry_id": "journal_entries", "loan_id": "loans"},
    "repayments": {"id": "repayments", "loan_id": "loans", "entry_id": "journal_entries"},
    "allocations": {
        "id": "allocations",
        "repayment_id": "repayments",
        "entry_id": "journal_entries",
    },
}
# The template loan of a row of each table (alias t).
TEMPLATE_LOAN = {
    "loans": "t.id",
    "allocations": "(SELECT r.loan_id FROM repayments r WHERE r.id = t.repayment_id)",
}


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


@dataclass
class CloneSpans:
    """Where the templates sit: loans base + 1 .. base + count, and each table's id span."""

    base: int
    count: int
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: (min id, max id)

    def width(self, table: str) -> int:
        low, high = self.spans[table]
        return high - low + 1


def stage_templates(conn: psycopg.Connection[Any], base: int, count: int) -> CloneSpans:
    """Copy the templates' rows into temporary tables tpl_<table> (with their template loan)."""
    spans = CloneSpans(base, count)
    for table in ID_COLUMNS:
        loan = TEMPLATE_LOAN.get(table, "t.loan_id")
        conn.execute(f"DROP TABLE IF EXISTS tpl_{table}")
        conn.execute(
            f"CREATE TEMP TABLE tpl_{table} AS SELECT t.*, {loan} AS tpl_loan FROM {table} t"
            f" WHERE {loan} BETWEEN %s AND %s",
            (base + 1, base + count),
        )
        low, high = conn.execute(f"SELECT min(id), max(id) FROM tpl_{table}").fetchone()  # type: ignore[misc]
        spans.spans[table] = (int(low), int(high))
    if spans.spans["loans"] != (base + 1, base + count):
        raise RuntimeError(f"template loans are not {base + 1}..{base + count}")
    return spans


def _clone_sql(conn: psycopg.Connection[Any], table: str, spans: CloneSpans, loans: int) -> str:
    exprs = []
    for column in _columns(conn, table):
        target = ID_COLUMNS[table].get(column)
        if target is not None:
            exprs.append(f"t.{column} + k.k * {spans.width(target)}")
        elif table == "loans" and column == "borrower_ref":
            exprs.append(f"'bench-' || (t.id + k.k * {spans.count})")
        elif table == "journal_entries" and column == "description":  # "... of loan <id>"
            exprs.append(
                f"regexp_replace(t.description, ' of loan ' || t.loan_id || '$',"
                f" ' of loan ' || (t.loan_id + k.k * {spans.count}))"
            )
        else:
            exprs.append(f"t.{column}")
    columns = ", ".join(_columns(conn, table))
    return (
        f"INSERT INTO {table} ({columns}) SELECT {', '.join(exprs)}"
        f" FROM generate_series(%(k_lo)s::int, %(k_hi)s::int) AS k(k) CROSS JOIN tpl_{table} t"
        f" WHERE t.tpl_loan - {spans.base} + k.k * {spans.count} <= {loans}"
        " ORDER BY k.k, t.id"
    )


def clone(
    conn: psycopg.Connection[Any],
    spans: CloneSpans,
    *,
    loans: int,
    fast_load: bool,
    progress: Progress = log,
) -> dict[str, float]:
    """Copy the templates until loans base + 1 .. base + `loans` exist; seconds per table.

    One transaction per CHUNK_LOANS loans. With `fast_load` the session skips per-row triggers
    (session_replication_role = replica): foreign-key checks and the zero-sum trigger."""
    rounds = math.ceil(loans / spans.count) - 1  # copies of every template beyond the first
    per_chunk = max(1, CHUNK_LOANS // spans.count)
    statements = {table: _clone_sql(conn, table, spans, loans) for table in ID_COLUMNS}
    seconds: dict[str, float] = defaultdict(float)
    if fast_load:
        conn.execute("SET session_replication_role = replica")
    try:
        for k_lo in range(1, rounds + 1, per_chunk):
            k_hi = min(rounds, k_lo + per_chunk - 1)
            for table, statement in statements.items():
                t0 = time.perf_counter()
                conn.execute(statement, {"k_lo": k_lo, "k_hi": k_hi})
                seconds[table] += time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.commit()  # with fast_load off, the deferred zero-sum triggers run here
            seconds["commit"] += time.perf_counter() - t0
            done = min(loans, (k_hi + 1) * spans.count)
            progress(f"cloned {done:,}/{loans:,} loans ({sum(seconds.values()):,.1f} s)")
    except BaseException:
        conn.rollback()
        raise
    finally:
        if fast_load:
            conn.execute("RESET session_replication_role")
            conn.commit()
    for table in ID_COLUMNS:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {table}))",
            (table,),
        )
    conn.commit()
    return dict(seconds)


def verify_clones(conn: psycopg.Connection[Any], spans: CloneSpans, loans: int) -> None:
    """Set-based checks of what fast_load skipped, on the copies: every entry balances per
    currency, every copied id reference resolves; loan ids are base + 1 .. base + loans; and
    on a sample of ~1,000 loans the ledger's receivables equal the installments' outstanding
    (the check of tests/integration/helpers.py check_loan_consistent)."""
    _, lines_hi = spans.spans["journal_lines"]
    unbalanced = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM journal_lines WHERE id > %s"
        " GROUP BY entry_id, currency HAVING sum(amount) <> 0) x",
        (lines_hi,),
    ).fetchone()[0]  # type: ignore[index]
    problems = [f"{unbalanced} unbalanced entries"] if unbalanced else []
    for table, columns in ID_COLUMNS.items():
        _, high = spans.spans[table]
        for column, target in columns.items():
            if column == "id":
                continue
            dangling = conn.execute(
                f"SELECT count(*) FROM {table} t WHERE t.id > %s AND t.{column} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {target} x WHERE x.id = t.{column})",
                (high,),
            ).fetchone()[0]  # type: ignore[index]
            if dangling:
                problems.append(f"{dangling} {table}.{column} without a {target} row")
    count, low, high = conn.execute(
        "SELECT count(*), min(id), max(id) FROM loans WHERE id > %s", (spans.base,)
    ).fetchone()  # type: ignore[misc]
    if (count, low, high) != (loans, spans.base + 1, spans.base + loans):
        problems.append(f"loan ids: {count} rows in {low}..{high}")
    sample = list(range(spans.base + 1, spans.base + loans + 1, max(1, loans // 1000)))
    mismatched = ledger_mismatches(conn, sample)
    if mismatched:
        problems.append(f"ledger differs from the installments on loans {mismatched[:10]}")
    conn.commit()
    if problems:
        raise RuntimeError("cloned book inconsistent: " + "; ".join(problems))


# The sub-ledger figure each receivable account must equal, summed over live installments.
RECEIVABLES = {
    Account.PRINCIPAL_RECEIVABLE: "principal - paid_principal",
    Account.INTEREST_RECEIVABLE: "interest_accrued - paid_interest",
    Account.FEE_RECEIVABLE: "fee_charged - paid_fee",
    Account.PENALTY_RECEIVABLE: "penalty_charged - paid_penalty",
}


def ledger_mismatches(conn: psycopg.Connection[Any], loan_ids: list[int]) -> list[int]:
    """The loans among `loan_ids` whose receivable balances (journal lines) differ from their
    installments' outstanding amounts."""
    ledger = {
        (loan_id, account): amount
        for loan_id, account, amount in conn.execute(
            "SELECT loan_id, account, sum(amount) FROM journal_lines WHERE loan_id = ANY(%s)"
            " GROUP BY 1, 2",
            (loan_ids,),
        )
    }
    outstanding = ", ".join(f"sum({expr})" for expr in RECEIVABLES.values())
    mismatched = []
    for loan_id, *amounts in conn.execute(
        f"SELECT loan_id, {outstanding} FROM installments WHERE loan_id = ANY(%s)"
        " AND NOT cancelled GROUP BY 1 ORDER BY 1",
        (loan_ids,),
    ):
        for account, amount in zip(RECEIVABLES, amounts, strict=True):
            if ledger.get((loan_id, account.value), ZERO) != amount:
                mismatched.append(loan_id)
                break
    return mismatched


# ---------------------------------------------------------------- summary


@dataclass
class Summary:
    business_date: date
    loans: int  # loans generated: ids first_loan_id .. last_loan_id
    first_loan_id: int
    last_loan_id: int
    templates: int
    overdue_templates: int
    fast_load: bool
    by_status: dict[str, int] = field(default_factory=dict)  # whole loans table
    by_product: dict[str, int] = field(default_factory=dict)  # active loans
    by_bucket: dict[str, int] = field(default_factory=dict)  # DPD on the business date
    by_class: dict[str, int] = field(default_factory=dict)  # five-tier class by DPD
    overdue: int = 0  # active loans with DPD > 0 on the business date
    rows: dict[str, int] = field(default_factory=dict)  # rows in each table
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase

    @property
    def overdue_share(self) -> float:
        active = self.by_status.get("active", 0)
        return self.overdue / active if active else 0.0


# Oldest installment due before the business date with anything left to pay, per active loan.
OVERDUE_SQL = """
SELECT l.product_id, %(day)s::date - o.oldest, count(*)
FROM (SELECT loan_id, min(due_date) AS oldest FROM installments
      WHERE NOT cancelled AND due_date < %(day)s
        AND principal - paid_principal + interest_accrued - paid_interest
            + fee_charged - paid_fee + penalty_charged - paid_penalty > 0
      GROUP BY loan_id) o
JOIN loans l ON l.id = o.loan_id AND l.status = 'active'
GROUP BY 1, 2
"""


def summarize(conn: psycopg.Connection[Any], summary: Summary) -> Summary:
    """Counts by status, product, DPD bucket and five-tier class (each product's policy)."""
    day = summary.business_date
    products = {
        pid: (code, ProductConfig.model_validate(config).servicing_policy)
        for pid, code, config in conn.execute("SELECT id, code, config FROM products")
    }
    summary.by_status = dict(
        conn.execute("SELECT status, count(*) FROM loans GROUP BY 1 ORDER BY 1").fetchall()
    )
    active = dict(
        conn.execute(
            "SELECT product_id, count(*) FROM loans WHERE status = 'active' GROUP BY 1"
        ).fetchall()
    )
    summary.by_product = {products[pid][0]: n for pid, n in sorted(active.items())}
    buckets: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    current = dict(active)
    for pid, dpd, n in conn.execute(OVERDUE_SQL, {"day": day}).fetchall():
        policy = products[pid][1]
        buckets[policy.buckets().bucket_for(dpd).name] += n
        classes[class_by_dpd(dpd, policy.thresholds()).value] += n
        current[pid] -= n
        summary.overdue += n
    for pid, n in current.items():
        buckets[products[pid][1].buckets().bucket_for(0).name] += n
        classes[class_by_dpd(0, products[pid][1].thresholds()).value] += n
    summary.by_bucket = dict(sorted(buckets.items()))
    order = ["normal", "special_mention", "substandard", "doubtful", "loss"]
    summary.by_class = {c: classes[c] for c in order if classes[c]}
    for table in (*ID_COLUMNS, "products"):
        summary.rows[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
    conn.commit()
    return summary


# ---------------------------------------------------------------- the bare accrual UPDATE

BARE_INSTALLMENTS_SQL = """
UPDATE installments i
SET interest_accrued = CASE WHEN i.due_date <= %(day)s THEN i.interest
    ELSE div(i.interest * 100 * (%(day)s::date - i.start_date), i.due_date - i.start_date) / 100
    END
FROM loans l
WHERE l.id = i.loan_id AND l.status = 'active' AND l.accrued_through = %(day)s::date - 1
  AND NOT i.cancelled AND i.start_date < %(day)s AND i.due_date >= %(day)s
"""
BARE_LOANS_SQL = """
UPDATE loans SET accrued_through = %(day)s
WHERE status = 'active' AND accrued_through = %(day)s::date - 1
"""


def bare_accrual_update(conn: psycopg.Connection[Any] | str, *, business_date: date) -> float:
    """Seconds for the bare interest accrual of `business_date`, rolled back.

    The cumulative interest of the day (accrual.interest_accrued_to: scheduled interest x days
    elapsed / days in the period, floored to the cent) set on the current period's installments
    of every active loan accrued through the day before, then those loans' accrued_through
    advanced: two set-based UPDATEs, no fees, penalty, ledger or delinquency."""
    with _psycopg(conn) as c, c.transaction(force_rollback=True):
        t0 = time.perf_counter()
        c.execute(BARE_INSTALLMENTS_SQL, {"day": business_date})
        c.execute(BARE_LOANS_SQL, {"day": business_date})
        seconds = time.perf_counter() - t0
    return seconds


# ---------------------------------------------------------------- generate


@contextlib.contextmanager
def _psycopg(conn_or_url: psycopg.Connection[Any] | str) -> Iterator[psycopg.Connection[Any]]:
    if isinstance(conn_or_url, str):
        with psycopg.connect(common.libpq_url(normalize_url(conn_or_url))) as conn:
            yield conn
    else:
        yield conn_or_url


def _engine(conn_or_url: psycopg.Connection[Any] | str) -> Engine:
    if isinstance(conn_or_url, str):
        return build_engine(conn_or_url)
    conninfo = make_conninfo(conn_or_url.info.dsn, password=conn_or_url.info.password)
    engine: Engine = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo)
    )
    return engine


def generate(
    conn_or_url: psycopg.Connection[Any] | str,
    *,
    loans: int,
    business_date: date,
    seed: int = 0,
    templates: int = DEFAULT_TEMPLATES,
    fast_load: bool = True,
    verify: bool = True,
    vacuum: bool = True,
    progress: Progress = log,
) -> Summary:
    """`loans` active loans accrued through business_date - 1 (see the module notes).

    `conn_or_url`: a migrated PostgreSQL database (URL, or a psycopg connection, on which this
    commits). Deterministic for a seed; the templates are min(templates, loans)."""
    if loans < 1 or templates < 1:
        raise ValueError("loans and templates must be positive")
    count = min(templates, loans)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    engine = _engine(conn_or_url)
    try:
        with _psycopg(conn_or_url) as conn:
            t0 = time.perf_counter()
            plans = plan_templates(count, business_date, seed)
            base, overdue = book_templates(engine, plans, business_date, progress)
            seconds["templates through the services"] = time.perf_counter() - t0
            if fast_load and not _superuser(conn):
                progress("not a superuser: the clones are loaded with every trigger firing")
                fast_load = False
            spans = stage_templates(conn, base, count)
            for table, s in clone(
                conn, spans, loans=loans, fast_load=fast_load, progress=progress
            ).items():
                seconds[f"clone {table}"] = s
            if verify:
                t0 = time.perf_counter()
                verify_clones(conn, spans, loans)
                seconds["verify the clones"] = time.perf_counter() - t0
                progress(f"clones verified ({seconds['verify the clones']:,.1f} s)")
            if vacuum:
                t0 = time.perf_counter()
                conn.commit()
                autocommit, conn.autocommit = conn.autocommit, True
                try:
                    for table in ID_COLUMNS:
                        conn.execute(f"VACUUM (ANALYZE) {table}")
                finally:
                    conn.autocommit = autocommit
                seconds["vacuum analyze"] = time.perf_counter() - t0
                progress(f"VACUUM ANALYZE ({seconds['vacuum analyze']:,.1f} s)")
            summary = Summary(
                business_date, loans, base + 1, base + loans, count, overdue, fast_load
            )
            summarize(conn, summary)
            for table in ID_COLUMNS:
                conn.execute(f"DROP TABLE IF EXISTS tpl_{table}")
            conn.commit()
    finally:
        engine.dispose()
    seconds["total"] = time.perf_counter() - t_all
    summary.seconds = seconds
    return summary


def _superuser(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    conn.commit()
    return bool(row and row[0])


# ---------------------------------------------------------------- CLI


def report(summary: Summary) -> str:
    rows: list[list[object]] = [
        ["loans (ids)", f"{summary.loans:,} ({summary.first_loan_id}..{summary.last_loan_id})"],
        ["templates (overdue)", f"{summary.templates:,} ({summary.overdue_templates})"],
        [
            "overdue on the business date",
            f"{summary.overdue:,} ({summary.overdue_share:.1%})",
        ],
    ]
    rows += [[f"status {k}", f"{v:,}"] for k, v in summary.by_status.items()]
    rows += [[f"product {k}", f"{v:,}"] for k, v in summary.by_product.items()]
    rows += [[f"bucket {k}", f"{v:,}"] for k, v in summary.by_bucket.items()]
    rows += [[f"class {k}", f"{v:,}"] for k, v in summary.by_class.items()]
    rows += [[f"rows in {k}", f"{v:,}"] for k, v in summary.rows.items()]
    rows += [[f"seconds: {k}", f"{v:,.1f}"] for k, v in summary.seconds.items()]
    load = "fast load, per-row triggers skipped" if summary.fast_load else "every trigger fired"
    head = f"Book accrued through {summary.business_date - timedelta(days=1)} ({load})"
    return head + "\n\n" + common.table(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument(
        "--db",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL database to CREATE/DROP the scratch database from",
    )
    parser.add_argument(
        "--date", type=date.fromisoformat, default=date(2025, 6, 30), help="business date"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--templates", type=int, default=DEFAULT_TEMPLATES)
    parser.add_argument(
        "--checked-load",
        action="store_true",
        help="copy the clones with every trigger firing (foreign keys, zero-sum) to time them",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the set-based checks")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if args.loans < 1 or args.templates < 1:
        parser.error("--loans and --templates must be positive")
    with common.scratch_postgres(
        args.db, prefix="mobilend_bench_portfolio", keep=args.keep, log=log
    ) as url:
        t0 = time.perf_counter()
        upgrade(url)
        log(f"migrated {url.rpartition('/')[2]} ({time.perf_counter() - t0:.1f} s)")
        summary = generate(
            url,
            loans=args.loans,
            business_date=args.date,
            seed=args.seed,
            templates=args.templates,
            fast_load=not args.checked_load,
            verify=not args.no_verify,
        )
        bare = [bare_accrual_update(url, business_date=args.date) for _ in range(2)]
        print()
        print(report(summary))
        print(
            f"\nbare accrual UPDATE for {args.date} (rolled back), two runs: "
            + ", ".join(f"{s:.2f} s" for s in bare)
        )


if __name__ == "__main__":
    main()
