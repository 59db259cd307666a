"""The close's loan step as set-based SQL on PostgreSQL, exactly equal to the Decimal path.

For one business date D and a range of loan ids, a handful of statements over temporary
tables do what `loans.service.accrue_locked` and `servicing.status.refresh_delinquency` do one
loan at a time (tests/integration/test_close_agreement.py checks every row agrees):

Accrual (loans whose accrued_through is D - 1; a loan further behind is caught up by the
Decimal path, see close.run_loans):
- interest: the installment's cumulative accrued figure floor(interest * elapsed / days) to
  the cent, with integer division (div) on numerics - exact, as accrual.interest_accrued_to;
- installment fee on the due date, a late fee once past the grace days while principal is
  overdue;
- penalty interest on overdue principal: each installment's daily amount in units of 1e-20,
  rounded up (accrual._daily_amount); the loan's carry flows through its installments in
  number order, so the cents posted on installment k are
  floor((carry + d_1 + ... + d_k) / cent) - floor((carry + d_1 + ... + d_(k-1)) / cent),
  a running sum (window function) - the same cents and carry as the Decimal loop;
- one balanced journal entry per loan with its non-zero lines, in the Decimal path's order.

Delinquency: DPD from the oldest unpaid installment due before D, bucket, five-tier class (the
worse of the DPD tier and the manual floor), overdue amounts, exposure and the provision,
rounded half-even to the cent in SQL, from each product's ServicingPolicy passed in as a small
table of parameters.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from mobilend.servicing.classification import LoanClass
from mobilend.servicing.policy import ServicingPolicy
from mobilend.servicing.provisioning import ProvisionMethod

CLASSES = [c.value for c in LoanClass]  # normal ... loss, by rank

ACCRUAL = [
    "DROP TABLE IF EXISTS cl_locked, cl_loans, cl_inst, cl_sums",
    # lock the range's active loans in id order (the lock order of every loan change): a
    # repayment waits for this partition; only these loans are accrued
    """
    CREATE TEMP TABLE cl_locked ON COMMIT DROP AS
    SELECT id FROM loans WHERE id >= :lo AND id < :hi AND status = 'active' ORDER BY id
       FOR UPDATE
    """,
    # the loans one day behind, and the settings their terms froze at booking
    """
    CREATE TEMP TABLE cl_loans ON COMMIT DROP AS
    SELECT l.id AS loan_id, l.currency,
           sv.penalty_rate_pct AS pen_pct,
           sv.late_fee,
           sv.late_fee_grace_days AS grace,
           CASE t.day_count
             WHEN 'act/365' THEN 365 WHEN 'act/360' THEN 360 WHEN '30/360' THEN 360
             ELSE CASE WHEN (extract(year FROM CAST(:d AS date))::int % 4 = 0
                         AND extract(year FROM CAST(:d AS date))::int % 100 <> 0)
                        OR extract(year FROM CAST(:d AS date))::int % 400 = 0
                       THEN 366 ELSE 365 END
           END AS denom,
           l.penalty_carry::numeric * 1e20 AS carry_units
      FROM cl_locked k JOIN loans l ON l.id = k.id
      -- the terms JSON parsed once per loan (each -> would parse it again)
      CROSS JOIN LATERAL json_to_record(l.terms) AS t(day_count text, servicing json)
      CROSS JOIN LATERAL json_to_record(t.servicing)
                 AS sv(penalty_rate_pct numeric, late_fee numeric, late_fee_grace_days int)
     WHERE l.id >= :lo AND l.id < :hi AND l.status = 'active'
       AND l.accrued_through = CAST(:d AS date) - 1
    """,
    "ANALYZE cl_loans",
    # per live installment: the new interest figure, fees due, and the penalty cents posted:
    # the day's amount in units of 1e-20 rounded up (d), the carry's running sum in
    # installment order (cum), and the whole cents it crosses (posted)
    """
    CREATE TEMP TABLE cl_inst ON COMMIT DROP AS
    SELECT z.*,
           (floor(z.cum / 1e18) - floor((z.cum - z.d) / 1e18)) / 100 AS posted
      FROM (
        SELECT y.*, y.carry_units + sum(y.d) OVER (PARTITION BY y.loan_id ORDER BY y.number)
                      AS cum
          FROM (
            SELECT x.*, div(x.units, x.denom)
                        + CASE WHEN x.units - div(x.units, x.denom) * x.denom <> 0
                               THEN 1 ELSE 0 END AS d
              FROM (
                SELECT i.id, i.loan_id, i.number, i.interest_accrued, c.currency, c.denom,
                       c.carry_units,
                       CASE WHEN CAST(:d AS date) - i.start_date >= i.due_date - i.start_date
                              THEN i.interest
                            WHEN CAST(:d AS date) <= i.start_date THEN 0::numeric
                            ELSE div(i.interest * 100 * (CAST(:d AS date) - i.start_date),
                                     i.due_date - i.start_date) / 100
                       END AS new_interest,
                       CASE WHEN i.due_date <= CAST(:d AS date) AND i.fee_charged < i.fee
                                 AND NOT i.late_fee_charged
                              THEN i.fee - i.fee_charged ELSE 0 END AS due_fee,
                       CASE WHEN i.principal - i.paid_principal > 0 AND c.late_fee > 0
                                 AND NOT i.late_fee_charged
                                 AND CAST(:d AS date) > i.due_date + c.grace
                              THEN c.late_fee ELSE 0 END AS late_fee,
                       CASE WHEN i.principal - i.paid_principal > 0 AND c.pen_pct > 0
                                 AND i.due_date < CAST(:d AS date)
                              THEN (i.principal - i.paid_principal) * c.pen_pct * 1e18
                            ELSE 0 END AS units
                  FROM cl_loans c JOIN installments i ON i.loan_id = c.loan_id
                 WHERE NOT i.cancelled  -- only installments the day can change:
                   AND ((i.interest_accrued < i.interest AND i.start_date < CAST(:d AS date))
                        OR (i.due_date <= CAST(:d AS date) AND i.fee_charged < i.fee)
                        OR (i.principal > i.paid_principal AND i.due_date < CAST(:d AS date)))
              ) x
          ) y
      ) z
    """,
    "ANALYZE cl_inst",
    """
    UPDATE installments i
       SET interest_accrued = c.new_interest,
           fee_charged = i.fee_charged + c.due_fee + c.late_fee,
           late_fee_charged = i.late_fee_charged OR c.late_fee > 0,
           penalty_charged = i.penalty_charged + c.posted
      FROM cl_inst c
     WHERE i.id = c.id
       AND (c.new_interest <> c.interest_accrued OR c.due_fee <> 0 OR c.late_fee <> 0
            OR c.posted <> 0)
    """,
    """
    CREATE TEMP TABLE cl_sums ON COMMIT DROP AS
    SELECT loan_id, min(currency) AS currency,
           sum(new_interest - interest_accrued) AS interest,
           sum(due_fee + late_fee) AS fee,
           sum(posted) AS penalty,
           max(cum) AS cum_last
      FROM cl_inst GROUP BY loan_id
    """,
    "ANALYZE cl_sums",
    # the carry moves only through installments with a penalty; loans without any keep theirs
    """
    UPDATE loans l
       SET accrued_through = CAST(:d AS date),
           penalty_carry = CASE WHEN s.cum_last IS NULL THEN l.penalty_carry
                                ELSE (mod(s.cum_last, 1e18) / 1e20)::text END
      FROM cl_loans c LEFT JOIN cl_sums s ON s.loan_id = c.loan_id
     WHERE l.id = c.loan_id
    """,
    """
    WITH s AS (
        SELECT loan_id, currency, interest, fee, penalty FROM cl_sums
         WHERE interest <> 0 OR fee <> 0 OR penalty <> 0
    ), e AS (
        INSERT INTO journal_entries (loan_id, kind, business_date, description)
        SELECT loan_id, 'accrual', CAST(:d AS date), :description FROM s ORDER BY loan_id
        RETURNING id, loan_id
    )
    INSERT INTO journal_lines (entry_id, account, loan_id, currency, amount)
    SELECT e.id, v.account, e.loan_id, s.currency, v.amount
      FROM e JOIN s ON s.loan_id = e.loan_id
      CROSS JOIN LATERAL (VALUES
          (1, 'interest_receivable', s.interest), (2, 'interest_income', -s.interest),
          (3, 'fee_receivable', s.fee), (4, 'fee_income', -s.fee),
          (5, 'penalty_receivable', s.penalty), (6, 'penalty_income', -s.penalty)
      ) AS v(ord, account, amount)
     WHERE v.amount <> 0
     ORDER BY e.id, v.ord
    """,
]


CL_LOANS = next(st for st in ACCRUAL if "CREATE TEMP TABLE cl_loans" in st)


def accrue_range(session: Session, *, business_date: date, lo: int, hi: int) -> int:
    """Accrue day D for the active loans in [lo, hi) accrued through D - 1. Returns loans."""
    params = {
        "d": business_date,
        "lo": lo,
        "hi": hi,
        "description": f"accrual {business_date}..{business_date}",
    }
    connection = session.connection()
    count = 0
    for statement in ACCRUAL:
        result = connection.execute(text(statement), params)
        if statement is CL_LOANS:
            count = result.rowcount
    return count


def _policy_rows(policies: dict[int, ServicingPolicy]) -> str:
    """The products' policies as JSON for jsonb_to_recordset: one row per product."""
    rows = []
    for product_id, policy in policies.items():
        scheme = policy.buckets()
        settings = policy.provision_settings()
        expected = settings.method is ProvisionMethod.EXPECTED_LOSS
        rows.append(
            {
                "product_id": product_id,
                "bounds": list(policy.bucket_upper_bounds),
                "names": list(scheme.names),
                "thresholds": list(policy.thresholds().as_tuple()),
                "expected": expected,
                "pds": [str(policy.pd_by_bucket.get(n, 0)) for n in scheme.names],
                "lgd": str(policy.lgd),
                "rates": [str(settings.regulatory_rates.for_class(LoanClass(c))) for c in CLASSES],
                "net": settings.net_of_collateral,
            }
        )
    return json.dumps(rows)


DELINQUENCY = [
    "DROP TABLE IF EXISTS cl_pol, cl_state, cl_new",
    """
    CREATE TEMP TABLE cl_pol ON COMMIT DROP AS
    SELECT product_id, bounds, names, thresholds, expected,
           pds::numeric[] AS pds, lgd::numeric AS lgd, rates::numeric[] AS rates, net
      FROM jsonb_to_recordset(CAST(:policies AS jsonb)) AS x(
           product_id int, bounds int[], names text[], thresholds int[], expected boolean,
           pds text[], lgd text, rates text[], net boolean)
    """,
    # arrears and balances per active loan (unpaid installments due before D are overdue)
    """
    CREATE TEMP TABLE cl_state ON COMMIT DROP AS
    SELECT l.id AS loan_id, l.product_id,
           min(i.due_date) FILTER (WHERE od) AS oldest,
           coalesce(sum(i.principal - i.paid_principal) FILTER (WHERE od), 0) AS od_p,
           coalesce(sum(i.interest_accrued - i.paid_interest) FILTER (WHERE od), 0) AS od_i,
           coalesce(sum(i.fee_charged - i.paid_fee) FILTER (WHERE od), 0) AS od_f,
           coalesce(sum(i.penalty_charged - i.paid_penalty) FILTER (WHERE od), 0) AS od_pen,
           coalesce(sum(i.principal - i.paid_principal), 0) AS outstanding,
           coalesce(sum(i.principal - i.paid_principal + i.interest_accrued - i.paid_interest
                        + i.fee_charged - i.paid_fee + i.penalty_charged - i.paid_penalty), 0)
             AS exposure,
           (SELECT min(least(p.lending_value, p.current_value)) FROM pledges p
             WHERE p.loan_id = l.id AND p.status = 'active') AS collateral
      FROM loans l
      LEFT JOIN LATERAL (
           SELECT *, due_date < CAST(:d AS date)
                     AND (principal - paid_principal + interest_accrued - paid_interest
                          + fee_charged - paid_fee + penalty_charged - paid_penalty) > 0 AS od
             FROM installments WHERE loan_id = l.id AND NOT cancelled) i ON true
     WHERE l.id >= :lo AND l.id < :hi AND l.status = 'active'
     GROUP BY l.id, l.product_id
    """,
    "ANALYZE cl_state",
    # bucket, class and provision from each product's policy
    """
    CREATE TEMP TABLE cl_new ON COMMIT DROP AS
    SELECT y.*,
           CASE WHEN y.base_rate * 100 - floor(y.base_rate * 100) > 0.5
                  THEN floor(y.base_rate * 100) + 1
                WHEN y.base_rate * 100 - floor(y.base_rate * 100) < 0.5
                  THEN floor(y.base_rate * 100)
                ELSE floor(y.base_rate * 100) + mod(floor(y.base_rate * 100), 2)
           END / 100 AS provision
      FROM (
        SELECT x.*,
               (CAST(:classes AS text[]))[x.rank + 1] AS loan_class,
               x.rank >= 2 AS npl,
               CASE WHEN p.expected
                      THEN p.pds[x.bucket_pos] * p.lgd
                           * greatest(0, x.exposure - coalesce(x.collateral, 0))
                    WHEN p.net
                      THEN p.rates[x.rank + 1] * greatest(0, x.exposure - coalesce(x.collateral, 0))
                    ELSE p.rates[x.rank + 1] * x.exposure
               END AS base_rate
          FROM (
            SELECT s.*, o.class_floor, d.dpd,
                   p.names[b.pos] AS bucket, b.pos AS bucket_pos,
                   greatest(t.passed, coalesce(array_position(CAST(:classes AS text[]),
                            o.class_floor::text) - 1, 0)) AS rank
              FROM cl_state s
              JOIN cl_pol p ON p.product_id = s.product_id
              LEFT JOIN loan_delinquency o ON o.loan_id = s.loan_id
              CROSS JOIN LATERAL (SELECT coalesce(CAST(:d AS date) - s.oldest, 0) AS dpd) d
              -- how many bounds / thresholds the DPD is strictly past (they are sorted)
              CROSS JOIN LATERAL (SELECT 1 + width_bucket(d.dpd - 1, p.bounds) AS pos) b
              CROSS JOIN LATERAL (SELECT width_bucket(d.dpd - 1, p.thresholds) AS passed) t
          ) x JOIN cl_pol p ON p.product_id = x.product_id
      ) y
    """,
    "ANALYZE cl_new",
    """
    INSERT INTO delinquency_events
           (loan_id, business_date, dpd, from_bucket, to_bucket, from_class, to_class)
    SELECT n.loan_id, CAST(:d AS date), n.dpd, o.bucket, n.bucket, o.loan_class, n.loan_class
      FROM cl_new n
      LEFT JOIN loan_delinquency o ON o.loan_id = n.loan_id
     WHERE (o.loan_id IS NULL AND n.bucket_pos <> 1)
        OR (o.loan_id IS NOT NULL AND (o.bucket <> n.bucket OR o.loan_class <> n.loan_class))
     ORDER BY n.loan_id
    """,
    """
    INSERT INTO loan_delinquency AS o
           (loan_id, business_date, dpd, bucket, loan_class, class_floor, npl, oldest_due_date,
            overdue_principal, overdue_interest, overdue_fee, overdue_penalty,
            outstanding_principal, exposure, collateral_value, provision)
    SELECT loan_id, CAST(:d AS date), dpd, bucket, loan_class, class_floor, npl, oldest,
           od_p, od_i, od_f, od_pen, outstanding, exposure, collateral, provision
      FROM cl_new ORDER BY loan_id
    ON CONFLICT (loan_id) DO UPDATE SET
           business_date = excluded.business_date, dpd = excluded.dpd,
           bucket = excluded.bucket, loan_class = excluded.loan_class, npl = excluded.npl,
           oldest_due_date = excluded.oldest_due_date,
           overdue_principal = excluded.overdue_principal,
           overdue_interest = excluded.overdue_interest, overdue_fee = excluded.overdue_fee,
           overdue_penalty = excluded.overdue_penalty,
           outstanding_principal = excluded.outstanding_principal,
           exposure = excluded.exposure, collateral_value = excluded.collateral_value,
           provision = excluded.provision
    """,
    """
    DELETE FROM loan_delinquency o USING loans l
     WHERE l.id = o.loan_id AND o.loan_id >= :lo AND o.loan_id < :hi AND l.status <> 'active'
    """,
]


def refresh_range(
    session: Session,
    *,
    business_date: date,
    lo: int,
    hi: int,
    policies: dict[int, ServicingPolicy],
) -> int:
    """Set-based refresh_delinquency for [lo, hi). Returns the loans refreshed."""
    params = {
        "d": business_date,
        "lo": lo,
        "hi": hi,
        "policies": _policy_rows(policies),
        "classes": CLASSES,
    }
    connection = session.connection()
    count = 0
    for position, statement in enumerate(DELINQUENCY):
        result = connection.execute(text(statement), params)
        if position == 4:  # cl_new: the loans refreshed
            count = result.rowcount
    return count


SNAPSHOT = [
    """
    DELETE FROM delinquency_snapshots
     WHERE business_date = CAST(:d AS date) AND loan_id >= :lo AND loan_id < :hi
    """,
    """
    INSERT INTO delinquency_snapshots (business_date, loan_id, disbursed_on, dpd, bucket,
                                       loan_class, outstanding_principal)
    SELECT o.business_date, o.loan_id, l.disbursed_on, o.dpd, o.bucket, o.loan_class,
           o.outstanding_principal
      FROM loan_delinquency o JOIN loans l ON l.id = o.loan_id
     WHERE o.loan_id >= :lo AND o.loan_id < :hi AND o.business_date = CAST(:d AS date)
    """,
]


def snapshot_range(session: Session, *, business_date: date, lo: int, hi: int) -> int:
    """Month-end: keep the range's loan_delinquency rows of this close as snapshots."""
    connection = session.connection()
    params = {"d": business_date, "lo": lo, "hi": hi}
    connection.execute(text(SNAPSHOT[0]), params)
    return connection.execute(text(SNAPSHOT[1]), params).rowcount
