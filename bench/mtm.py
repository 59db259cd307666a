"""Mark-to-market of the whole pledge book on PostgreSQL, against a bare set-based UPDATE.

On a scratch PostgreSQL database (Alembic migrations, the seed catalog, one product with
collateral terms):

1. a portfolio generated with set-based SQL (generate_series, no ORM objects): `--pledges`
   active loans of 1,000-3,000 booked over the last year (12 monthly installments each: due
   ones paid, some 6% of loans 1-3 installments behind with late fee and penalty, the current
   one's interest accrued), one pawned phone pledged for each (unique Luhn-valid IMEIs, the
   catalog's models, variants and grades, a fifth carrier-locked) and dated price quotes, so
   that some series are valued on the market median and the others on the depreciation curve;
2. `marking.mark_all` timed three times, each in one unit of work: the first mark on the
   business date (from the booking figures: status changes and margin calls), the same
   date again (idempotent: nothing changes) and the next day after prices moved;
3. the "bare" equivalent, timed in the same run: one plain UPDATE of every active pledge
   setting current_value, outstanding, ltv and marked_on from the per-loan outstanding (GROUP
   BY over installments) and a small table of reference values - no status logic, no events,
   no margin calls. Best of two runs (before the first mark and before the next-day one).

A sample of pledges is then checked against `marking.compute` (the Decimal path) for exact
agreement. Target from the issue: under 30 s for 1,000,000 pledges on the 2-core machine.
The scratch database is dropped, even on error.

    .venv/bin/python bench/mtm.py [--pledges 1000000] [--explain] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import common
import psutil
import psycopg
from common import fmt_int, machine_lines, table, write_section
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mobilend.collateral import catalog, grading, marking, prices, service
from mobilend.collateral.models import Pledge
from mobilend.collateral.pledges import outstanding
from mobilend.db.migrate import upgrade
from mobilend.db.session import build_engine, session_factory, unit_of_work
from mobilend.loans import service as loans
from mobilend.loans.models import Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn

TARGET_SECONDS = 30.0
MB = 1024 * 1024
ANNUAL_RATE = Decimal("18")
PERIODS = 12
MONTHLY_RATE = 0.015  # 18% / 12: the generated schedules are plain annuities at this rate
SOURCES = ("bench-recycler", "bench-tradein", "bench-market")
Series = tuple[str, int, str]
D = Decimal


# ---------------------------------------------------------------- results


@dataclass
class MarkRun:
    label: str
    on: date
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.counts.get("marked", 0) / self.seconds if self.seconds else 0.0


@dataclass
class BareRun:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class Check:
    on: date
    sampled: int = 0
    agree: int = 0
    mismatches: list[str] = field(default_factory=list)
    calls_ok: bool = True
    calls_detail: str = ""


@dataclass
class Result:
    pledges: int = 0
    installments: int = 0
    quotes: int = 0
    series: int = 0
    market_series: int = 0
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    marks: list[MarkRun] = field(default_factory=list)
    bare: list[BareRun] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    peak_rss_marks_mb: float = 0.0
    peak_rss_mb: float = 0.0
    explain: str = ""

    @property
    def best_bare(self) -> BareRun | None:
        return min(self.bare, key=lambda b: b.seconds) if self.bare else None


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def log(message: str, t0: float | None = None) -> None:
    suffix = f" ({time.perf_counter() - t0:,.1f} s)" if t0 is not None else ""
    print(f"[mtm] {message}{suffix}", flush=True)


# ---------------------------------------------------------------- scratch database


def scratch_postgres(
    admin_url: str, *, keep: bool = False
) -> contextlib.AbstractContextManager[str]:
    return common.scratch_postgres(admin_url, prefix="mobilend_bench_mtm", keep=keep, log=log)


def maintenance(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


# ---------------------------------------------------------------- reference data


def setup_reference(factory: sessionmaker[Session], code: str) -> tuple[int, dict[str, Any]]:
    """Catalog, product and terms; the terms JSON of one loan booked through the service."""
    config = ProductConfig(
        annual_rate_pct=ANNUAL_RATE,
        penalty_rate_pct=D("18"),
        late_fee=D("50"),
        late_fee_grace_days=3,
    )
    with unit_of_work(factory) as s:
        service.import_catalog(s, catalog.seed_catalog())
        product = loans.create_product(
            s, ProductIn(code=code, name="Phone pawn loan", config=config)
        )
        service.set_terms(s, product_code=code, data={})
        product_id = product.id
    s = factory()
    try:  # booked only to copy its terms: rolled back
        loan = loans.create_loan(
            s,
            LoanIn(
                product_code=code, principal=D("2000"), periods=PERIODS, start_date=date.today()
            ),
        )
        terms = dict(loan.terms)
    finally:
        s.rollback()
        s.close()
    return product_id, terms


def all_series(factory: sessionmaker[Session]) -> list[Series]:
    with unit_of_work(factory) as s:
        rows = s.execute(text("SELECT model_key, storage_gb FROM device_variants")).all()
    return sorted((m, int(g), grade) for m, g in rows for grade in grading.GRADES)


def curve_values(factory: sessionmaker[Session], series: list[Series], on: date) -> dict[Series, D]:
    with unit_of_work(factory) as s:
        return {x: marking.reference_value(s, x, on=on).value for x in series}


def make_quotes(
    values: dict[Series, D], on: date, seed: int
) -> tuple[list[prices.PriceQuote], int]:
    """Fresh quotes (4 days x 3 sources) for ~60% of the series around the curve value times a
    per-series factor 0.75-1.15; stale ones (20 days old) for ~10%; none for the rest."""
    rng = random.Random(seed)
    quotes: list[prices.PriceQuote] = []
    market = 0
    for x, value in values.items():
        role = rng.random()
        if value < 50 or role >= 0.7:
            continue
        if role < 0.6:
            market += 1
            level = value * D(str(round(rng.uniform(0.75, 1.15), 3)))
            days = (13, 9, 5, 1)
        else:
            level, days = value, (20,)
        for back in days:
            for source in SOURCES:
                price = (level * D(str(round(rng.uniform(0.97, 1.03), 3)))).quantize(D("1"))
                quotes.append(prices.PriceQuote(*x, price, on - timedelta(days=back), source))
    return quotes, market


def next_day_quotes(
    factory: sessionmaker[Session], on: date, seed: int
) -> tuple[list[prices.PriceQuote], int]:
    """For a third of the market-basis series, as many new quotes as the window holds: a quarter
    of those series at 65% of today's median (their median falls ~17%), the rest at 110%."""
    rng = random.Random(seed + 1)
    with unit_of_work(factory) as s:
        rows = s.execute(
            text(
                "SELECT model_key, storage_gb, grade, count(*), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY price) FROM price_quotes "
                "WHERE quoted_on > :since AND quoted_on <= :on "
                "GROUP BY model_key, storage_gb, grade HAVING max(quoted_on) > :fresh"
            ),
            {"since": on - timedelta(days=30), "on": on, "fresh": on - timedelta(days=14)},
        ).all()
    quotes: list[prices.PriceQuote] = []
    moved = 0
    for model_key, storage_gb, grade, count, median in sorted(rows):
        if rng.random() >= 1 / 3:
            continue
        moved += 1
        level = D(str(median)) * (D("0.65") if rng.random() < 0.25 else D("1.10"))
        for n in range(int(count)):
            price = (level * D(str(round(rng.uniform(0.98, 1.02), 3)))).quantize(D("1"))
            quotes.append(
                prices.PriceQuote(
                    model_key, storage_gb, grade, price, on + timedelta(days=1), f"bench-move-{n}"
                )
            )
    return quotes, moved


# ---------------------------------------------------------------- the portfolio, set-based


def _imei_sql(column: str) -> str:
    """'35' + the number zero-padded to 12 digits + its Luhn check digit, as one expression.

    Digits are numbered from the left (1..14); even positions are doubled (minus 9 above 9).
    The prefix '35' contributes 3 + (2*5 - 9) = 4."""
    terms = ["4"]
    for pos in range(3, 15):
        digit = f"(({column} / {10 ** (14 - pos)}) %% 10)"
        terms.append(f"(2 * {digit} - 9 * ({digit} >= 5)::int)" if pos % 2 == 0 else digit)
    total = " + ".join(terms)
    return f"'35' || lpad({column}::text, 12, '0') || ((10 - ({total}) %% 10) %% 10)::text"


CONDITIONS = {
    "mint": ("flawless", "flawless", 95, []),
    "excellent": ("minor_wear", "flawless", 88, []),
    "good": ("visible_wear", "minor_wear", 83, []),
    "fair": ("minor_wear", "dented", 76, ["speaker"]),
    "poor": ("cracked", "visible_wear", 65, ["camera", "face_id", "wifi"]),
}


def _condition_sql() -> str:
    cases = []
    for grade, (screen, body, battery, failed) in CONDITIONS.items():
        for locked in (False, True):
            doc = {
                "screen": screen,
                "body": body,
                "battery_health_pct": battery,
                "failed_checks": failed,
                "carrier_locked": locked,
            }
            cases.append(
                f"WHEN b.grade = '{grade}' AND b.locked = {str(locked).lower()} "
                f"THEN '{json.dumps(doc)}'"
            )
    return "(CASE " + " ".join(cases) + " END)::json"


BOOK_SQL = """
CREATE UNLOGGED TABLE bench_book AS
WITH g AS (
    SELECT i, random() AS r_series, random() AS r_lock, random() AS r_age, random() AS r_size,
           random() AS r_late, random() AS r_missed
    FROM generate_series(1, %(n)s) i
), picked AS (
    SELECT g.*, s.model_key, s.storage_gb, s.grade, s.v0, s.eligible,
           %(on)s::date - (g.r_age * 364)::int AS start
    FROM g JOIN bench_pick s ON s.pick = CASE
        WHEN g.r_series < 0.02 THEN %(eligible)s + floor(g.r_series / 0.02 * %(all)s)::int
        ELSE floor((g.r_series - 0.02) / 0.98 * %(eligible)s)::int END
), valued AS (
    SELECT p.*, (p.r_lock < 0.2) AS locked,
           CASE WHEN p.r_lock < 0.2 THEN 0.85 ELSE 1 END::numeric(12, 6) AS factor,
           round(p.v0 * CASE WHEN p.r_lock < 0.2 THEN 0.85 ELSE 1 END
                 * (1 + 0.25 * (%(on)s::date - p.start) / 365.0), 2) AS value_b
    FROM picked p
), priced AS (
    SELECT v.*,
           CASE WHEN v.eligible
                THEN least(3000, greatest(1000,
                     round(v.value_b * (0.45 + 0.25 * v.r_size) / 100) * 100))
                ELSE 1000 + floor(v.r_size * 21) * 100 END::numeric(20, 2) AS principal
    FROM valued v
)
SELECT i, model_key, storage_gb, grade, locked, factor, start, principal,
       greatest(value_b, round(principal / 0.7, 2)) AS booking_value,
       (extract(year FROM age(%(on)s::date, start)) * 12
        + extract(month FROM age(%(on)s::date, start)))::int AS months_due,
       CASE WHEN r_late < 0.06 THEN 1 + floor(r_missed * 3)::int ELSE 0 END AS missed
FROM priced
"""

LOANS_SQL = """
INSERT INTO loans (id, product_id, borrower_ref, status, currency, principal, terms,
                   disbursed_on, accrued_through, penalty_carry, written_off_on, closed_on,
                   created_at)
SELECT %(base)s + b.i, %(product)s, 'bench-' || b.i, 'active', 'CNY', b.principal,
       jsonb_set(jsonb_set(%(terms)s::jsonb, '{principal}', to_jsonb(b.principal::text)),
                 '{start}', to_jsonb(b.start::text))::json,
       b.start, %(on)s, '0', NULL, NULL, now()
FROM bench_book b
ORDER BY b.i
"""


# An annuity at MONTHLY_RATE: the balance after k payments, rounded to the cent (0 after the
# last), gives principal_k = balance(k-1) - balance(k) (summing to the loan exactly) and
# interest_k = balance(k-1) x rate. Due installments are paid, except the last `missed` ones
# of a late loan (interest charged, a late fee of 50 after 3 days, penalty at 18% a year on
# the overdue principal); the current one has its interest accrued pro rata.
def _balance(k: str) -> str:
    """The annuity balance after k payments, rounded to the cent (numeric, over b.principal)."""
    r = f"{MONTHLY_RATE}::numeric"
    growth = f"power(1 + {r}, {k})"
    payment = f"(b.principal * {r} / (1 - power(1 + {r}, -{PERIODS})))"
    return f"round(b.principal * {growth} - {payment} * ({growth} - 1) / {r}, 2)"


INSTALLMENTS_SQL = f"""
INSERT INTO installments (loan_id, number, start_date, due_date, principal, interest, fee,
                          interest_accrued, fee_charged, penalty_charged, paid_principal,
                          paid_interest, paid_fee, paid_penalty, late_fee_charged, cancelled)
SELECT %(base)s + b.i, n, s.start_date, s.due_date, s.principal, s.interest, 0,
       CASE WHEN s.due_date <= %(on)s THEN s.interest
            WHEN s.start_date < %(on)s THEN round(s.interest * (%(on)s::date - s.start_date)
                                                  / (s.due_date - s.start_date), 2)
            ELSE 0 END,
       CASE WHEN s.missed AND %(on)s::date - s.due_date > 3 THEN 50 ELSE 0 END,
       CASE WHEN s.missed THEN round(s.principal * 0.18 * (%(on)s::date - s.due_date) / 365, 2)
            ELSE 0 END,
       CASE WHEN s.paid THEN s.principal ELSE 0 END,
       CASE WHEN s.paid THEN s.interest ELSE 0 END,
       0, 0, s.missed AND %(on)s::date - s.due_date > 3, false
FROM bench_book b
CROSS JOIN generate_series(1, {PERIODS}) n
CROSS JOIN LATERAL (
    SELECT (b.start + (n - 1) * interval '1 month')::date AS start_date,
           (b.start + n * interval '1 month')::date AS due_date,
           {_balance("n - 1")}
               - CASE WHEN n = {PERIODS} THEN 0 ELSE {_balance("n")} END AS principal,
           round({_balance("n - 1")} * {MONTHLY_RATE}::numeric, 2) AS interest,
           n <= b.months_due AND n > b.months_due - b.missed AS missed,
           n <= b.months_due - b.missed AS paid
) s
"""


PLEDGES_SQL = f"""
INSERT INTO pledges (loan_id, product_id, imei, model_key, storage_gb, grade, condition,
                     carrier_locked,
                     value_factor, custody_mode, location, status, pledged_on, closed_on,
                     booking_value, lending_value, current_value, outstanding, ltv, ltv_status,
                     shortfall, marked_on, sale_proceeds, surplus)
SELECT %(base)s + b.i, %(product)s, {_imei_sql("b.i::bigint")}, b.model_key, b.storage_gb,
       b.grade,
       {_condition_sql()}, b.locked, b.factor, 'pawn',
       'Store ' || (1 + b.i %% 60) || ', ' || (ARRAY['Shenzhen', 'Guangzhou', 'Dongguan',
       'Foshan'])[1 + b.i %% 4], 'active', b.start, NULL,
       b.booking_value, round(b.booking_value * 0.8 * 0.88, 2), b.booking_value, b.principal,
       ceil(b.principal / b.booking_value * 10000) / 10000, 'ok', 0, b.start, NULL, NULL
FROM bench_book b
ORDER BY b.i
"""


def generate(
    url: str,
    *,
    n: int,
    values0: dict[Series, D],
    product_id: int,
    terms: dict[str, Any],
    on: date,
    seed: int,
) -> float:
    """Loans, installments and pledges with set-based SQL; returns the seconds it took."""
    t_all = time.perf_counter()
    eligible = [x for x, v in values0.items() if v >= 1500]
    everything = list(values0)
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE UNLOGGED TABLE bench_pick (pick int PRIMARY KEY, model_key varchar(80), "
            "storage_gb int, grade varchar(16), v0 numeric, eligible bool)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_pick VALUES (%s, %s, %s, %s, %s, %s)",
                [(k, *x, values0[x], True) for k, x in enumerate(eligible)]
                + [(len(eligible) + k, *x, values0[x], False) for k, x in enumerate(everything)],
            )
        conn.execute("SELECT setseed(%s)", (((seed % 1000) / 1000.0),))
        params: dict[str, Any] = {
            "n": n,
            "on": on,
            "eligible": len(eligible),
            "all": len(everything),
            "product": product_id,
            "terms": json.dumps(terms),
        }
        t0 = time.perf_counter()
        conn.execute(BOOK_SQL, params)  # type: ignore[arg-type]
        params["base"] = conn.execute("SELECT coalesce(max(id), 0) FROM loans").fetchone()[0]  # type: ignore[index]
        log(f"book of {n:,} drawn", t0)
        t0 = time.perf_counter()
        conn.execute(LOANS_SQL, params)  # type: ignore[arg-type]
        conn.execute("SELECT setval('loans_id_seq', (SELECT max(id) FROM loans))")
        log(f"{n:,} loans", t0)
        t0 = time.perf_counter()
        conn.execute(INSTALLMENTS_SQL, params)  # type: ignore[arg-type]
        log(f"{n * PERIODS:,} installments", t0)
        t0 = time.perf_counter()
        conn.execute(PLEDGES_SQL, params)  # type: ignore[arg-type]
        log(f"{n:,} pledges", t0)
        conn.execute("DROP TABLE bench_book")
        conn.execute("DROP TABLE bench_pick")
        conn.commit()
    return time.perf_counter() - t_all


# ---------------------------------------------------------------- timing mark_all


class Phases:
    """Time spent inside marking's steps, without touching marking.py: the module functions
    are wrapped, and SQL statements are timed by engine events and told apart by their text."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.capture: list[tuple[str, Any]] = []  # the mark's SQL on mtm_values, and the UPDATE
        self.last_capture: list[tuple[str, Any]] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0

        return timed

    def install(self, engine: Any, *, analyze_values: bool = False) -> None:
        marking.live_series = self.wrap("live series (SELECT DISTINCT)", marking.live_series)
        marking.reference_value = self.wrap(
            "reference values (Python, per series)", marking.reference_value
        )
        marking.expire_margin_calls = self.wrap("expire margin calls", marking.expire_margin_calls)

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            conn.info["bench_t0"] = time.perf_counter()
            if "mtm_values" in statement or "WITH owed" in statement:
                self.capture.append((statement, parameters))

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
            if analyze_values and statement.startswith("INSERT INTO mtm_values"):
                cursor.execute("ANALYZE mtm_values")  # --what-if-analyze: not marking's own
            if "WITH owed AS" in statement:
                self.seconds["UPDATE_SQL (set-based mark, events, calls)"] += elapsed
            elif "WITH cured AS" in statement:
                self.seconds["CURE_CALLS_SQL"] += elapsed

    def take(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds.clear()
        self.last_capture, self.capture = self.capture, []
        return out


def timed_mark(
    factory: sessionmaker[Session],
    phases: Phases,
    label: str,
    on: date,
    now: datetime,
    timeout: float,
) -> MarkRun:
    """One `mark_all` in one unit of work, commit included; statements cut at `timeout` s."""
    run = MarkRun(label, on, rss_before_mb=rss_mb())
    phases.take()
    t0 = time.perf_counter()
    t_body = 0.0
    try:
        with unit_of_work(factory) as s:
            s.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
            t0 = time.perf_counter()
            run.counts = marking.mark_all(s, on=on, now=now)
            t_body = time.perf_counter()
    except OperationalError as exc:
        if not isinstance(exc.orig, psycopg.errors.QueryCanceled):
            raise
        run.timed_out = True
    end = time.perf_counter()
    run.seconds = end - t0
    run.phases = phases.take()
    if t_body:
        run.phases["commit"] = end - t_body
    else:  # cancelled: the statement running at the timeout was the UPDATE (or a lookup)
        run.phases["cancelled statement"] = run.seconds - sum(run.phases.values())
    run.rss_after_mb = rss_mb()
    run.load = os.getloadavg()
    outcome = (
        f"TIMED OUT (statement_timeout {timeout:.0f} s)"
        if run.timed_out
        else f"{run.seconds:,.1f} s, {run.rate:,.0f} pledges/s, {run.counts}"
    )
    log(
        f"{label}: {outcome}; "
        + ", ".join(f"{k} {v:.2f} s" for k, v in run.phases.items())
        + f"; rss {run.rss_before_mb:.0f} -> {run.rss_after_mb:.0f} MB"
    )
    return run


# ---------------------------------------------------------------- the bare UPDATE

BARE_SQL = """
UPDATE pledges p
SET current_value = round(v.ref * p.value_factor, 2),
    outstanding = o.owed,
    ltv = CASE WHEN o.owed <= 0 THEN 0
               WHEN round(v.ref * p.value_factor, 2) > 0
               THEN ceil(o.owed * 10000 / round(v.ref * p.value_factor, 2)) / 10000 END,
    marked_on = %(on)s
FROM (SELECT loan_id,
             sum((principal - paid_principal) + (interest_accrued - paid_interest)
                 + (fee_charged - paid_fee) + (penalty_charged - paid_penalty)) AS owed
      FROM installments WHERE NOT cancelled GROUP BY loan_id) o,
     bare_values v
WHERE p.status = 'active' AND o.loan_id = p.loan_id
  AND v.model_key = p.model_key AND v.storage_gb = p.storage_gb AND v.grade = p.grade
"""


def reference_values(factory: sessionmaker[Session], on: date) -> dict[Series, marking.Reference]:
    with unit_of_work(factory) as s:
        return {x: marking.reference_value(s, x, on=on) for x in marking.live_series(s)}


def bare_update(
    url: str, refs: dict[Series, marking.Reference], on: date, timeout: float
) -> BareRun:
    with psycopg.connect(url) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")  # type: ignore[arg-type]
        conn.execute(
            "CREATE TEMP TABLE bare_values (model_key varchar(80), storage_gb int, "
            "grade varchar(16), ref numeric) ON COMMIT DROP"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bare_values VALUES (%s, %s, %s, %s)",
                [(*x, r.value) for x, r in refs.items()],
            )
        conn.execute("ANALYZE bare_values")  # a temp table is never analyzed by autovacuum
        t0 = time.perf_counter()
        rows = conn.execute(BARE_SQL, {"on": on}).rowcount  # type: ignore[arg-type]
        conn.commit()
        run = BareRun(rows, time.perf_counter() - t0)
    log(f"bare UPDATE: {rows:,} rows in {run.seconds:,.1f} s, {run.rate:,.0f} rows/s")
    return run


def settle(url: str) -> None:
    """Between timed steps: what autovacuum would do overnight, and a checkpoint."""
    t0 = time.perf_counter()
    maintenance(url, "VACUUM ANALYZE pledges", "VACUUM ANALYZE margin_calls", "CHECKPOINT")
    log("VACUUM ANALYZE + CHECKPOINT", t0)


# ---------------------------------------------------------------- checks


def check_sample(factory: sessionmaker[Session], on: date, size: int) -> Check:
    """Recompute `size` pledges with the Decimal path and compare field by field."""
    check = Check(on)
    refs: dict[Series, marking.Reference] = {}
    terms: dict[int, service.Terms] = {}
    with unit_of_work(factory) as s:
        total = s.scalar(text("SELECT count(*) FROM pledges")) or 0
        step = max(1, total // size)
        ids = list(
            s.scalars(
                text("SELECT id FROM pledges WHERE id % :step = 0 ORDER BY id LIMIT :size"),
                {"step": step, "size": size},
            )
        )
        for pledge_id in ids:
            pledge = s.get(Pledge, pledge_id)
            assert pledge is not None
            loan = s.get(Loan, pledge.loan_id)
            assert loan is not None
            series = (pledge.model_key, pledge.storage_gb, pledge.grade)
            if series not in refs:
                refs[series] = marking.reference_value(s, series, on=on)
            if loan.product_id not in terms:
                terms[loan.product_id] = service.terms_for(s, loan.product_id)
            want = marking.compute(
                refs[series],
                factor=pledge.value_factor,
                owed=outstanding(loan),
                terms=terms[loan.product_id],
            )
            got = (pledge.current_value, pledge.outstanding, pledge.ltv, pledge.ltv_status,
                   pledge.shortfall, pledge.marked_on)  # fmt: skip
            expected = (want.value, want.owed, want.ltv, want.status, want.shortfall, on)
            check.sampled += 1
            if got == expected:
                check.agree += 1
            elif len(check.mismatches) < 5:
                check.mismatches.append(f"pledge {pledge_id}: stored {got}, Decimal {expected}")
            s.expunge_all()
        # every pledge in the call zone has exactly one open call, and no other pledge has one
        zone_without, open_outside = s.execute(
            text(
                "SELECT count(*) FILTER (WHERE p.ltv_status IN ('margin_call', 'liquidation')"
                "                          AND c.id IS NULL),"
                "       count(*) FILTER (WHERE p.ltv_status NOT IN ('margin_call', 'liquidation')"
                "                          AND c.id IS NOT NULL)"
                " FROM pledges p LEFT JOIN margin_calls c"
                "   ON c.pledge_id = p.id AND c.status = 'open'"
            )
        ).one()
    check.calls_ok = zone_without == 0 and open_outside == 0
    check.calls_detail = (
        f"{zone_without} pledges in the call zone without an open call, "
        f"{open_outside} open calls on pledges outside it"
    )
    log(
        f"check on {on}: {check.agree}/{check.sampled} agree with marking.compute; "
        f"{check.calls_detail}"
    )
    for line in check.mismatches:
        log(f"  MISMATCH {line}")
    return check


def db_facts(url: str, result: Result) -> None:
    with psycopg.connect(url) as conn:
        result.statuses = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT ltv_status, count(*) FROM pledges WHERE status = 'active'"
                " GROUP BY ltv_status ORDER BY 1"
            ).fetchall()
        )
        for name in ("pledges", "installments", "loans", "collateral_events", "margin_calls"):
            result.sizes[name] = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size(%s))", (name,)
            ).fetchone()[0]  # type: ignore[index]
        result.sizes["database"] = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]  # type: ignore[index]
        events = conn.execute(
            "SELECT kind, count(*) FROM collateral_events GROUP BY kind ORDER BY kind"
        ).fetchall()
    log(f"ltv_status: {result.statuses}; events: {dict(events)}; sizes: {result.sizes}")


def explain_update(engine: Any, captured: list[tuple[str, Any]], timeout: float) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of marking's UPDATE_SQL, replaying the statements the last
    mark ran (temp table of reference values, then the UPDATE) with their parameters; rolled
    back. If it does not finish within `timeout` s, the plan alone (EXPLAIN)."""
    if not any("WITH owed" in st for st, _ in captured):
        return "(no UPDATE_SQL captured)"
    for analyze in (True, False):
        with engine.connect() as conn:
            try:
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                for statement, params in captured:
                    if "WITH owed" not in statement:
                        conn.exec_driver_sql(statement, params)
                        continue
                    how = "ANALYZE, BUFFERS" if analyze else "COSTS"
                    rows = conn.exec_driver_sql(f"EXPLAIN ({how}) {statement}", params).all()
                    head = (
                        "" if analyze else f"(EXPLAIN ANALYZE did not finish in {timeout:.0f} s)\n"
                    )
                    return head + "\n".join(r[0] for r in rows)
            except OperationalError as exc:
                if not isinstance(exc.orig, psycopg.errors.QueryCanceled):
                    raise
            finally:
                conn.rollback()
    return "(EXPLAIN failed)"


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Result:
    result = Result(pledges=args.pledges, installments=args.pledges * PERIODS)
    on = args.date
    now = datetime.combine(on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18)
    day2, now2 = on + timedelta(days=1), now + timedelta(days=1)
    with scratch_postgres(args.postgres_url, keep=args.keep) as url:
        t0 = time.perf_counter()
        upgrade(url)
        engine = build_engine(url)
        factory = session_factory(engine)
        try:
            product_id, terms = setup_reference(factory, f"MTM{uuid.uuid4().hex[:8]}")
            series = all_series(factory)
            values0 = curve_values(factory, series, on)
            quotes, result.market_series = make_quotes(values0, on, args.seed)
            with unit_of_work(factory) as s:
                service.import_quotes(s, quotes, now=now)
            result.quotes = len(quotes)
            log(
                f"schema, catalog ({len(series)} series), product, {len(quotes):,} quotes "
                f"({result.market_series} series on fresh quotes)",
                t0,
            )
            result.generate_seconds = generate(
                url,
                n=args.pledges,
                values0=values0,
                product_id=product_id,
                terms=terms,
                on=on,
                seed=args.seed,
            )
            log(f"portfolio generated in {result.generate_seconds:,.1f} s")
            t0 = time.perf_counter()
            maintenance(url, "VACUUM ANALYZE", "CHECKPOINT")
            result.load_seconds = time.perf_counter() - t0
            log("VACUUM ANALYZE", t0)

            t0 = time.perf_counter()
            refs = reference_values(factory, on)
            result.series = len(refs)
            basis = Counter(r.basis for r in refs.values())
            log(f"reference values of {len(refs)} live series alone: {dict(basis)}", t0)

            phases = Phases()
            phases.install(engine, analyze_values=args.what_if_analyze)
            result.bare.append(bare_update(url, refs, on, args.timeout))
            settle(url)
            first = timed_mark(factory, phases, "first mark", on, now, args.timeout)
            result.marks.append(first)
            result.peak_rss_marks_mb = peak_rss_mb()
            if not first.timed_out:
                result.checks.append(check_sample(factory, on, args.check))
                result.marks.append(
                    timed_mark(factory, phases, "same date again", on, now, args.timeout)
                )
                settle(url)
                moved_quotes, moved = next_day_quotes(factory, on, args.seed)
                with unit_of_work(factory) as s:
                    service.import_quotes(s, moved_quotes, now=now)
                log(f"next day: {len(moved_quotes)} quotes moving {moved} series")
                # the second bare run before the next-day mark: the check sees mark_all's figures
                day2_refs = reference_values(factory, day2)
                result.bare.append(bare_update(url, day2_refs, day2, args.timeout))
                settle(url)
                last = timed_mark(
                    factory, phases, "next day, prices moved", day2, now2, args.timeout
                )
                result.marks.append(last)
                if not last.timed_out:
                    result.checks.append(check_sample(factory, day2, args.check))
            else:
                log("the first mark did not finish: the other marks and checks are skipped")
            captured = phases.last_capture
            db_facts(url, result)
            if args.explain:
                settle(url)
                result.explain = explain_update(engine, captured, args.timeout)
                print(result.explain, flush=True)
        finally:
            engine.dispose()
    result.peak_rss_mb = peak_rss_mb()
    return result


# ---------------------------------------------------------------- report


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s"


def _mark_result(m: MarkRun) -> str:
    if m.timed_out:
        return f"did not finish: cancelled at {_s(m.seconds)}"
    return f"{_s(m.seconds)} ({fmt_int(m.rate)}/s)"


def report(result: Result, args: argparse.Namespace) -> str:
    first = result.marks[0]
    bare = result.best_bare
    rows: list[list[str]] = [
        ["active pledges (one loan each, 12 installments)", fmt_int(result.pledges), "-"],
        [
            "portfolio generation, set-based SQL (+ VACUUM ANALYZE)",
            f"{_s(result.generate_seconds)} (+ {_s(result.load_seconds)})",
            "-",
        ],
    ]
    for m in result.marks:
        c = m.counts
        what = (
            f": {c.get('status_changes', 0):,} status changes, "
            f"{c.get('margin_calls_opened', 0):,} calls opened, "
            f"{c.get('margin_calls_cured', 0):,} cured"
            if not m.timed_out
            else f" (statement_timeout {args.timeout:.0f} s)"
        )
        rows.append(
            [f"`mark_all`, {m.label} ({m.on}){what}", _mark_result(m), f"< {TARGET_SECONDS:.0f} s"]
        )
    for name, seconds in first.phases.items():
        rows.append([f"first mark: {name}", _s(seconds), "-"])
    if bare is not None:
        runs = ", ".join(_s(b.seconds) for b in result.bare)
        rows.append(
            [
                f"bare set-based UPDATE, best of {len(result.bare)} ({runs})",
                f"{_s(bare.seconds)} ({fmt_int(bare.rate)}/s)",
                "-",
            ]
        )
        for m in result.marks:
            ratio = m.seconds / bare.seconds
            rows.append(
                [
                    f"service time / bare time, {m.label}",
                    f"> {ratio:.0f}x" if m.timed_out else f"{ratio:.2f}x",
                    "tracked",
                ]
            )
        if not first.timed_out:
            rows.append(
                [
                    "bare rate / service rate, first mark",
                    f"{bare.rate / first.rate:.2f}x",
                    "tracked",
                ]
            )
    growth = max(m.rss_after_mb - m.rss_before_mb for m in result.marks)
    rows += [
        [
            "benchmark process peak RSS after the first mark (whole run)",
            f"{result.peak_rss_marks_mb:,.0f} MB ({result.peak_rss_mb:,.0f} MB)",
            "pledges not loaded into Python",
        ],
        ["largest RSS growth over one `mark_all`", f"{growth:+.1f} MB", "-"],
    ]
    for c in result.checks:
        rows.append(
            [
                f"sample vs `marking.compute` (Decimal), {c.on}",
                f"{c.agree:,}/{c.sampled:,} agree; open calls match the zone: {c.calls_ok}",
                "all agree",
            ]
        )
    met = all(not m.timed_out and m.seconds < TARGET_SECONDS for m in result.marks)
    worst = max(m.seconds for m in result.marks)
    verdict = (
        f"**Under {TARGET_SECONDS:.0f} s for {result.pledges:,} pledges: "
        f"{'met' if met else 'NOT met'}** (first mark "
        f"{_mark_result(first)}, worst {_s(worst)}"
        + (", cancelled" if any(m.timed_out for m in result.marks) else "")
        + ")."
    )
    statuses = ", ".join(f"{k} {v:,}" for k, v in result.statuses.items())
    sizes = ", ".join(f"{k} {v}" for k, v in result.sizes.items())
    loads = "; ".join(f"{m.label} {m.load[0]:.2f}" for m in result.marks)
    parts = [
        table(["measure", "result", "target"], rows),
        "",
        verdict,
        "",
        f"LTV status after the run: {statuses}. {result.series} live series "
        f"({result.market_series} on fresh quotes, {result.quotes:,} quotes). Sizes: {sizes}. "
        f"Load average (1 min) after each mark: {loads}.",
    ]
    for c in result.checks:
        if c.mismatches:
            parts += ["", f"Mismatches on {c.on}: " + "; ".join(c.mismatches)]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pledges", type=int, default=1_000_000, help="active pledges (= loans)")
    parser.add_argument(
        "--date", type=date.fromisoformat, default=date(2025, 6, 30), help="business date"
    )
    parser.add_argument("--seed", type=int, default=20250630)
    parser.add_argument("--check", type=int, default=1000, help="pledges checked vs Decimal")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database to CREATE/DROP the scratch database from",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of marking.UPDATE_SQL"
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="statement_timeout of each mark, seconds"
    )
    parser.add_argument(
        "--what-if-analyze",
        action="store_true",
        help="diagnosis, not marking's behaviour: ANALYZE mtm_values after marking fills it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.pledges <= 0 or args.check <= 0 or args.timeout <= 0:
        parser.error("--pledges, --check and --timeout must be positive")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    result = run(args)
    out = report(result, args)
    print()
    print(out)
    if args.write:
        body = "\n".join(
            [
                "## Mark-to-market of the pledge book (PostgreSQL, service vs bare UPDATE)",
                "",
                f"`marking.mark_all` on a scratch PostgreSQL database holding {args.pledges:,} "
                "active pledges, one per loan, generated with set-based SQL: loans of "
                "1,000-3,000 booked over the last year with 12 monthly installments (due ones "
                "paid, ~6% of loans 1-3 behind with late fee and penalty), pawned phones over "
                "the seed catalog's models, variants and grades (a fifth carrier-locked), "
                "fresh price quotes for ~60% of the series (the others valued on the "
                "depreciation curve). Each mark runs in one unit of work, commit included: the "
                "first mark from the booking figures, the same date again (nothing changes), "
                "then the next day after a third of the quoted series moved (a quarter of "
                "those down ~17%). The bare test is one plain UPDATE of the same rows setting "
                "current_value, outstanding, ltv and marked_on from a GROUP BY over "
                "installments and a small table of reference values (no status, events or "
                "margin calls), best of a run before the first mark and one before the next-day "
                "mark; each timed step follows VACUUM ANALYZE and a CHECKPOINT. The phases of the "
                "first mark are timed by wrapping marking's functions and SQLAlchemy cursor "
                "events. PostgreSQL 15 with its default settings (shared_buffers 128 MB, "
                "work_mem 4 MB); other processes (test runs of other sessions) shared the "
                "2 CPUs, so the figures are noisy.",
                "",
                *machine_lines(),
                "",
                out,
            ]
        )
        print(f"\nwrote {write_section('mtm', body)}")


if __name__ == "__main__":
    main()
