"""Daily mark-to-market of pledged phones, margin calls and their cure or expiry.

For each live series (model, storage, grade) one reference value for the business date:
the market median when the feed is fresh, else launch price x storage x depreciation curve x
grade (service.value_device's rule, with no forecast and no haircut). A pledge's value is
that reference x its carrier factor, rounded half-even to the cent. Then

    ltv = outstanding / value, rounded up to 4 decimals   (valuation.loan_to_value)
    status by the product's thresholds                    (valuation.ltv_status)
    shortfall = max(0, outstanding / max_ltv - value), up to the cent (valuation.shortfall)

A status change is an event. Entering margin_call or liquidation opens a margin call asking
for `prepayment_to_cure` within the product's margin_call_days (one call per entry: staying
in the zone after a call expired opens no new one); it is cured when a mark (daily, or after
a payment) finds the status back below margin_call, and expires when its day passes first (a
device-lock phone is then locked; a pawned one waits for forfeiture by an operator).

Two paths compute the same figures: `mark_one` (Decimal, one pledge: after a payment and on
SQLite) and `mark_all` on PostgreSQL, set-based SQL in integer cents over all pledges at once
(tested to agree exactly). Marking twice on one date changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mobilend.collateral import depreciation, grading, valuation
from mobilend.collateral.models import DeviceModel, MarginCall, Pledge
from mobilend.collateral.notices import notify
from mobilend.collateral.pledges import outstanding, record
from mobilend.collateral.service import (
    DEFAULT_TERMS,
    Terms,
    curve,
    get_model,
    market_price,
    terms_for,
)
from mobilend.core.money import ZERO
from mobilend.loans.models import Loan
from mobilend.notify.templates import DEFAULT_LANGUAGE

Series = tuple[str, int, str]  # model_key, storage_gb, grade
CALL_ZONE = ("margin_call", "liquidation")


@dataclass(frozen=True)
class Reference:
    value: Decimal  # before the pledge's carrier factor
    basis: str  # "market" | "curve"


def reference_value(
    session: Session, series: Series, *, on: date, curves: dict[str, Any] | None = None
) -> Reference:
    """Today's value of a series before carrier factor; `curves` caches a model's curve (the
    same for every storage and grade) across the series of one marking run."""
    model_key, storage_gb, grade = series
    market = market_price(
        session, model_key=model_key, storage_gb=storage_gb, grade=grade, as_of=on
    )
    if market.price is not None and not market.stale:
        return Reference(market.price, "market")
    curves = {} if curves is None else curves
    if model_key not in curves:
        model = get_model(session, model_key)
        successor_on = session.scalar(
            select(DeviceModel.successor_release_date).where(DeviceModel.key == model_key)
        )
        curves[model_key] = (model, curve(session, model, as_of=on), successor_on)
    model, fitted, successor_on = curves[model_key]
    ratio = depreciation.ratio_at(
        fitted,
        age_days=max(0, (on - model.release_date).days),
        after_successor=successor_on is not None and successor_on <= on,
    )
    launch = model.base_variant.launch_price
    value = launch * grading.storage_factor(model, storage_gb) * ratio
    return Reference(value * grading.grade_multiplier(grade), "curve")


@dataclass(frozen=True)
class Mark:
    value: Decimal
    owed: Decimal
    ltv: Decimal | None
    status: str
    shortfall: Decimal
    to_cure: Decimal


def compute(ref: Reference, *, factor: Decimal, owed: Decimal, terms: Terms) -> Mark:
    """The Decimal figures of one pledge (the reference path the SQL must agree with)."""
    value = valuation.value_from_reference(
        reference_value=ref.value,
        basis=ref.basis,
        carrier_factor=factor,
        forecast_ratio=Decimal(1),
        haircut=ZERO,
    ).current_value
    ltv = valuation.loan_to_value(owed, value)
    status = valuation.ltv_status(
        ltv,
        warning=terms.warning_ltv,
        margin_call=terms.margin_call_ltv,
        liquidation=terms.liquidation_ltv,
    )
    return Mark(
        value,
        owed,
        ltv,
        status,
        valuation.shortfall(owed, value, terms.max_ltv),
        valuation.prepayment_to_cure(owed, value, terms.max_ltv),
    )


def mark_one(
    session: Session,
    pledge: Pledge,
    *,
    loan: Loan,
    on: date,
    now: datetime,
    ref: Reference | None = None,
    terms: Terms | None = None,
) -> Mark:
    """Mark one active pledge and handle its margin call (the Decimal path)."""
    terms = terms or terms_for(session, loan.product_id)
    ref = ref or reference_value(
        session, (pledge.model_key, pledge.storage_gb, pledge.grade), on=on
    )
    mark = compute(ref, factor=pledge.value_factor, owed=outstanding(loan), terms=terms)
    before = pledge.ltv_status
    pledge.current_value, pledge.outstanding, pledge.ltv = mark.value, mark.owed, mark.ltv
    pledge.ltv_status, pledge.shortfall, pledge.marked_on = mark.status, mark.shortfall, on
    if mark.status != before:
        record(session, pledge, f"ltv_{mark.status}", on=on, now=now, previous=before,
               **_figures(mark))  # fmt: skip
    call = session.scalar(
        select(MarginCall).where(MarginCall.pledge_id == pledge.id, MarginCall.status == "open")
    )
    if mark.status in CALL_ZONE and before not in CALL_ZONE and call is None:
        call = MarginCall(
            pledge_id=pledge.id, opened_on=on, due_on=on + timedelta(days=terms.margin_call_days),
            ltv=mark.ltv if mark.ltv is not None else Decimal("9999"), shortfall=mark.shortfall,
            prepayment_to_cure=mark.to_cure, status="open",
        )  # fmt: skip
        session.add(call)
        record(session, pledge, "margin_call", on=on, now=now, due_on=call.due_on.isoformat(),
               **_figures(mark))  # fmt: skip
        notify(session, pledge, "margin_call", on=on, now=now, mark=mark, due_on=call.due_on)
    elif mark.status in ("ok", "warning") and call is not None:
        call.status, call.closed_on = "cured", on
        record(session, pledge, "margin_call_cured", on=on, now=now,
               **_figures(mark, cure=False))  # fmt: skip
        notify(session, pledge, "margin_call_cured", on=on, now=now, mark=mark)
    session.flush()
    return mark


def _figures(mark: Mark, *, cure: bool = True) -> dict[str, Any]:
    figures = {
        "value": str(mark.value),
        "outstanding": str(mark.owed),
        "ltv": None if mark.ltv is None else str(mark.ltv),
        "shortfall": str(mark.shortfall),
    }
    return figures | {"prepayment_to_cure": str(mark.to_cure)} if cure else figures


# ---------------------------------------------------------------- the whole book


def live_series(session: Session) -> list[Series]:
    rows = session.execute(
        select(Pledge.model_key, Pledge.storage_gb, Pledge.grade)
        .where(Pledge.status == "active")
        .distinct()
    ).all()
    return sorted((r[0], r[1], r[2]) for r in rows)


def mark_all(
    session: Session, *, on: date, now: datetime, method: str = "auto", batch: int = 2000
) -> dict[str, int]:
    """Mark every active pledge on `on`; expire overdue margin calls. Returns counts.

    method: "sql" (PostgreSQL only), "decimal" (per pledge), or "auto" (sql on PostgreSQL).
    """
    if method not in ("auto", "sql", "decimal"):
        raise ValueError(f"unknown marking method {method!r}")
    postgres = session.get_bind().dialect.name == "postgresql"
    if method == "sql" and not postgres:
        raise ValueError("the set-based marking needs PostgreSQL")
    curves: dict[str, Any] = {}
    refs = {s: reference_value(session, s, on=on, curves=curves) for s in live_series(session)}
    if method == "sql" or (method == "auto" and postgres):
        counts = _mark_all_sql(session, refs, on=on, now=now)
    else:
        counts = _mark_all_loop(session, refs, on=on, now=now, batch=batch)
    counts["margin_calls_expired"] = expire_margin_calls(session, on=on, now=now)
    return counts


def _mark_all_loop(
    session: Session, refs: dict[Series, Reference], *, on: date, now: datetime, batch: int
) -> dict[str, int]:
    terms_cache: dict[int, Terms] = {}
    marked = 0
    last = 0
    while True:
        rows = session.execute(
            select(Pledge, Loan)
            .join(Loan, Loan.id == Pledge.loan_id)
            .where(Pledge.status == "active", Pledge.id > last)
            .order_by(Pledge.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for pledge, loan in rows:
            if loan.product_id not in terms_cache:
                terms_cache[loan.product_id] = terms_for(session, loan.product_id)
            series = (pledge.model_key, pledge.storage_gb, pledge.grade)
            mark_one(session, pledge, loan=loan, on=on, now=now, ref=refs[series],
                     terms=terms_cache[loan.product_id])  # fmt: skip
            marked += 1
            last = pledge.id
        session.flush()
    return {"marked": marked, "series": len(refs)}


def expire_margin_calls(session: Session, *, on: date, now: datetime) -> int:
    """Open calls whose day has passed expire; a device-lock phone is then locked."""
    calls = list(
        session.scalars(
            select(MarginCall).where(MarginCall.status == "open", MarginCall.due_on < on)
        )
    )
    for call in calls:
        call.status, call.closed_on = "expired", on
        pledge = session.get(Pledge, call.pledge_id)
        assert pledge is not None
        record(
            session, pledge, "margin_call_expired", on=on, now=now, due_on=call.due_on.isoformat()
        )
        notify(session, pledge, "margin_call_expired", on=on, now=now, due_on=call.due_on)
        if pledge.custody_mode == "device_lock" and pledge.status == "active":
            from mobilend.collateral import devices

            devices.command(
                session, pledge=pledge, action="lock", reason="margin call expired", on=on, now=now
            )
    session.flush()
    return len(calls)


# ---------------------------------------------------------------- PostgreSQL, set-based


def _ltv_pct(units: str) -> str:
    return f"coalesce(({units}::numeric / 100)::numeric(12, 2)::text, 'n/a')"


def _money(cents: str) -> str:
    return f"({cents}::numeric / 100)::numeric(20, 2)::text"


HALF_EVEN_CENTS = """
    CASE WHEN x * 100 - floor(x * 100) = 0.5
         THEN floor(x * 100) + mod(floor(x * 100), 2)
         ELSE round(x * 100) END
"""

MARK_SQL = """
CREATE TEMP TABLE IF NOT EXISTS mtm_values (
    model_key varchar(80), storage_gb integer, grade varchar(16), ref numeric, basis varchar(8)
) ON COMMIT DROP;
"""

# Step 1: every active pledge's figures, each expression computed once (OFFSET 0 keeps the
# planner from inlining a step into the next and recomputing it per reference), into a temp
# table. A CREATE TABLE AS may use parallel workers for the per-loan outstanding.
COMPUTE_SQL = f"""
CREATE TEMP TABLE mtm_marks ON COMMIT DROP AS
WITH owed AS (
    SELECT i.loan_id,
           sum((i.principal - i.paid_principal) + (i.interest_accrued - i.paid_interest)
               + (i.fee_charged - i.paid_fee) + (i.penalty_charged - i.paid_penalty)) AS owed
    FROM installments i
    JOIN pledges p ON p.loan_id = i.loan_id AND p.status = 'active'
    WHERE NOT i.cancelled
    GROUP BY i.loan_id
), base AS (
    SELECT p.id, p.loan_id, p.ltv_status AS before, round(o.owed * 100)::bigint AS owed_c,
           ({HALF_EVEN_CENTS})::bigint AS value_c,
           round(coalesce(t.max_ltv, :max_ltv) * 10000)::bigint AS max_u,
           coalesce(t.margin_call_days, :days) AS days,
           coalesce(t.warning_ltv, :warning_ltv) * 10000 AS warning_u,
           coalesce(t.margin_call_ltv, :margin_call_ltv) * 10000 AS margin_call_u,
           coalesce(t.liquidation_ltv, :liquidation_ltv) * 10000 AS liquidation_u
    FROM pledges p
    JOIN owed o ON o.loan_id = p.loan_id
    LEFT JOIN collateral_terms t ON t.product_id = p.product_id
    JOIN mtm_values v ON v.model_key = p.model_key AND v.storage_gb = p.storage_gb
                     AND v.grade = p.grade
    CROSS JOIN LATERAL (SELECT v.ref * p.value_factor AS x) z
    WHERE p.status = 'active'
    OFFSET 0
), ltv AS (
    SELECT b.*,
           CASE WHEN owed_c <= 0 THEN 0
                WHEN value_c = 0 THEN NULL
                ELSE div(owed_c * 10000 + value_c - 1, value_c) END AS ltv_u,
           owed_c * 10000 - value_c * max_u AS excess
    FROM base b
    OFFSET 0
)
SELECT l.id, l.loan_id, l.before, l.owed_c, l.value_c, l.ltv_u, l.days,
       CASE WHEN ltv_u IS NULL OR ltv_u >= liquidation_u THEN 'liquidation'
            WHEN ltv_u >= margin_call_u THEN 'margin_call'
            WHEN ltv_u >= warning_u THEN 'warning'
            ELSE 'ok' END AS status,
       CASE WHEN excess <= 0 THEN 0 ELSE div(excess + max_u - 1, max_u) END AS short_c,
       CASE WHEN excess <= 0 THEN 0 ELSE div(excess + 9999, 10000) END AS cure_c
FROM ltv l
"""

# Step 2: write the marks (HOT updates: no indexed column changes; pledges has fillfactor 50).
UPDATE_SQL = """
UPDATE pledges p
SET current_value = m.value_c / 100.0, outstanding = m.owed_c / 100.0,
    ltv = m.ltv_u::numeric / 10000, ltv_status = m.status, shortfall = m.short_c / 100.0,
    marked_on = :on
FROM mtm_marks m
WHERE p.id = m.id
"""

# Step 3: status-change events, margin calls for pledges entering the zone, their notices.
FOLLOW_SQL = f"""
WITH moved AS (
    SELECT * FROM mtm_marks WHERE before <> status
), opened AS (
    INSERT INTO margin_calls (pledge_id, opened_on, due_on, ltv, shortfall, prepayment_to_cure,
                              status)
    SELECT u.id, :on, :on + u.days, coalesce(u.ltv_u::numeric / 10000, 9999),
           u.short_c::numeric / 100, u.cure_c::numeric / 100, 'open'
    FROM moved u
    WHERE u.status IN ('margin_call', 'liquidation')
      AND u.before NOT IN ('margin_call', 'liquidation')
      AND NOT EXISTS (SELECT 1 FROM margin_calls c WHERE c.pledge_id = u.id AND c.status = 'open')
    RETURNING pledge_id, due_on
), call_events AS (
    INSERT INTO collateral_events (pledge_id, kind, business_date, detail, actor, created_at)
    SELECT u.id, 'margin_call', :on,
           json_build_object('due_on', o.due_on::text, 'value', {_money("u.value_c")},
                             'outstanding', {_money("u.owed_c")},
                             'ltv', (u.ltv_u::numeric / 10000)::numeric(12, 4)::text,
                             'shortfall', {_money("u.short_c")},
                             'prepayment_to_cure', {_money("u.cure_c")}),
           'system', :now
    FROM opened o JOIN moved u ON u.id = o.pledge_id
    RETURNING 1
), call_notices AS (
    INSERT INTO outbox_messages (dedupe_key, topic, channel, loan_id, language, params,
                                 business_date, created_at, status, attempts)
    SELECT 'margin_call:' || u.id || ':' || :on, 'collateral.margin_call', 'sms', u.loan_id,
           :language,
           json_build_object('loan_id', u.loan_id, 'value', {_money("u.value_c")},
                             'ltv_pct', {_ltv_pct("u.ltv_u")},
                             'prepayment_to_cure', {_money("u.cure_c")},
                             'due_on', o.due_on::text),
           :on, :now, 'pending', 0
    FROM opened o JOIN moved u ON u.id = o.pledge_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
), events AS (
    INSERT INTO collateral_events (pledge_id, kind, business_date, detail, actor, created_at)
    SELECT id, 'ltv_' || status, :on,
           json_build_object('previous', before, 'value', {_money("value_c")},
                             'outstanding', {_money("owed_c")},
                             'ltv', (ltv_u::numeric / 10000)::numeric(12, 4)::text,
                             'shortfall', {_money("short_c")},
                             'prepayment_to_cure', {_money("cure_c")}),
           'system', :now
    FROM moved
    RETURNING pledge_id
)
SELECT (SELECT count(*) FROM events) AS changed, (SELECT count(*) FROM call_events) AS opened,
       (SELECT count(*) FROM call_notices) AS notices
"""

CURE_CALLS_SQL = """
WITH cured AS (
    UPDATE margin_calls c SET status = 'cured', closed_on = :on
    FROM pledges p
    WHERE c.pledge_id = p.id AND c.status = 'open' AND p.marked_on = :on
      AND p.status = 'active' AND p.ltv_status IN ('ok', 'warning')
    RETURNING c.pledge_id
), ev AS (
    INSERT INTO collateral_events (pledge_id, kind, business_date, detail, actor, created_at)
    SELECT p.id, 'margin_call_cured', :on,
           json_build_object('value', p.current_value::text, 'outstanding', p.outstanding::text,
                             'ltv', p.ltv::numeric(12, 4)::text, 'shortfall', p.shortfall::text),
           'system', :now
    FROM cured JOIN pledges p ON p.id = cured.pledge_id
    RETURNING 1
), notices AS (
    INSERT INTO outbox_messages (dedupe_key, topic, channel, loan_id, language, params,
                                 business_date, created_at, status, attempts)
    SELECT 'margin_call_cured:' || p.id || ':' || :on, 'collateral.margin_call_cured', 'sms',
           p.loan_id, :language,
           json_build_object('loan_id', p.loan_id, 'value', p.current_value::text,
                             'ltv_pct', (p.ltv * 100)::numeric(12, 2)::text),
           :on, :now, 'pending', 0
    FROM cured JOIN pledges p ON p.id = cured.pledge_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM ev
"""


def _mark_all_sql(
    session: Session, refs: dict[Series, Reference], *, on: date, now: datetime
) -> dict[str, int]:
    session.flush()
    session.execute(text("SET LOCAL jit = off"))  # compiling this plan costs more than it saves
    session.execute(text("SET LOCAL work_mem = '128MB'"))  # hash joins in one batch, in order
    session.execute(text(MARK_SQL))
    session.execute(text("TRUNCATE mtm_values"))
    if refs:
        session.execute(
            text("INSERT INTO mtm_values VALUES (:m, :s, :g, :ref, :basis)"),
            [
                {"m": m, "s": s, "g": g, "ref": r.value, "basis": r.basis}
                for (m, s, g), r in refs.items()
            ],
        )
    session.execute(text("ANALYZE mtm_values"))  # temp tables are never auto-analyzed
    defaults = {k: DEFAULT_TERMS[k] for k in _THRESHOLDS}
    params = {"on": on, "now": now, "days": DEFAULT_TERMS["margin_call_days"], **defaults}
    session.execute(text("DROP TABLE IF EXISTS mtm_marks"))
    session.execute(text(COMPUTE_SQL), params)
    session.execute(text("ANALYZE mtm_marks"))
    marked = session.execute(text(UPDATE_SQL), {"on": on}).rowcount  # type: ignore[attr-defined]
    params["language"] = DEFAULT_LANGUAGE
    changed, opened, _ = session.execute(text(FOLLOW_SQL), params).one()
    cured = session.execute(
        text(CURE_CALLS_SQL), {"on": on, "now": now, "language": DEFAULT_LANGUAGE}
    ).scalar_one()
    session.execute(text("DROP TABLE mtm_marks"))
    session.expire_all()
    return {
        "marked": int(marked),
        "series": len(refs),
        "status_changes": int(changed),
        "margin_calls_opened": int(opened),
        "margin_calls_cured": int(cured),
    }


_THRESHOLDS = ("max_ltv", "warning_ltv", "margin_call_ltv", "liquidation_ltv")
