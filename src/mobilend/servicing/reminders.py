"""Repayment reminders: which installments a product reminds of on a date, put in the outbox.

A product's plan is `ServicingPolicy.reminders` (before_due_days, on_due, after_due_days,
channel). On a business date D an unpaid installment of an active loan is reminded
- `repayment.before_due` when it falls due D + n for n in before_due_days,
- `repayment.due_today` when it falls due on D (if on_due),
- `repayment.overdue` when it fell due D - n for n in after_due_days.

`reminder_on` is that rule for one installment (pure); `plan_reminders` applies it to the book
in one INSERT ... SELECT per call (the daily close calls it per partition of loan ids), with
`ON CONFLICT (dedupe_key) DO NOTHING` on the key `reminder:<installment id>:<due date>:<kind>:
<days>`, so a second run for the same date adds nothing. The amount is what the installment
still owes (as the loan statement counts it); the language is that of the loan's latest
contract, else zh-CN.

At sending time the relay calls `refresh` and `still_owed`: the amount and the number of days
are restated for the borrower's local date, and a reminder the borrower no longer needs (paid,
loan closed, or a "due in n days" that would arrive on or after the due date) is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, bindparam, select, text
from sqlalchemy.orm import Session

from mobilend.core.money import CENT, ZERO
from mobilend.db.session import is_postgres
from mobilend.loans.models import Installment, Loan, Product
from mobilend.loans.schemas import ProductConfig
from mobilend.notify.quiet import send_from
from mobilend.notify.templates import DEFAULT_LANGUAGE
from mobilend.origination.models import UtcDateTime
from mobilend.servicing.policy import ReminderPlan

KINDS = ("before_due", "due_today", "overdue")
TOPICS = frozenset(f"repayment.{kind}" for kind in KINDS)
DEFAULT_BORROWER_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Reminder:
    kind: str  # before_due / due_today / overdue
    days: int  # days before (before_due) or after (overdue) the due date; 0 on it

    @property
    def topic(self) -> str:
        return f"repayment.{self.kind}"


def reminder_on(plan: ReminderPlan, *, due_date: date, on: date) -> Reminder | None:
    """The reminder the plan sends on `on` for an unpaid installment due `due_date`, if any."""
    gap = (due_date - on).days
    if gap > 0:
        return Reminder("before_due", gap) if gap in plan.before_due_days else None
    if gap == 0:
        return Reminder("due_today", 0) if plan.on_due else None
    return Reminder("overdue", -gap) if -gap in plan.after_due_days else None


def due_dates(plan: ReminderPlan, on: date) -> dict[date, Reminder]:
    """Every due date the plan reminds of on `on`, with its reminder (reminder_on inverted)."""
    targets = {on + timedelta(days=n): Reminder("before_due", n) for n in plan.before_due_days}
    if plan.on_due:
        targets[on] = Reminder("due_today", 0)
    targets |= {on - timedelta(days=n): Reminder("overdue", n) for n in plan.after_due_days}
    return targets


def refresh(
    topic: str, params: Mapping[str, Any], *, today: date, owed: Decimal | None
) -> dict[str, Any] | None:
    """A planned reminder's parameters restated on the borrower's local `today`, or None
    when it should not be sent: nothing owed (`owed` None or zero), or its kind no longer
    fits (a before-due reminder on or after the due date, a due-today one on another day)."""
    if owed is None or owed <= ZERO:
        return None
    gap = (date.fromisoformat(str(params["due_date"])) - today).days
    fits = {"repayment.before_due": gap > 0, "repayment.due_today": gap == 0}
    if not fits.get(topic, gap < 0):
        return None
    days = abs(gap)
    return {**params, "amount": str(owed.quantize(CENT)), "days": days}


def still_owed(session: Session, *, loan_id: int, number: int) -> Decimal | None:
    """What the installment owes now (statement's count); None if it or its loan is done."""
    row = session.execute(
        select(Installment, Loan.status)
        .join(Loan, Loan.id == Installment.loan_id)
        .where(Installment.loan_id == loan_id, Installment.number == number)
    ).first()
    if row is None or row[1] != "active" or row[0].cancelled:
        return None
    i: Installment = row[0]
    return (
        (i.principal - i.paid_principal)
        + (i.interest - i.paid_interest)
        + (max(i.fee, i.fee_charged) - i.paid_fee)
        + (i.penalty_charged - i.paid_penalty)
    )


# ---------------------------------------------------------------- the set-based planner

_OWED = (
    "(i.principal - i.paid_principal) + (i.interest - i.paid_interest)"
    " + (CASE WHEN i.fee_charged > i.fee THEN i.fee_charged ELSE i.fee END - i.paid_fee)"
    " + (i.penalty_charged - i.paid_penalty)"
)
_PARAMS = {
    # amount as a 2-decimal string; SQLite keeps NUMERIC as binary floats, so printf rounds
    "postgresql": (
        "json_build_object('loan_id', l.id, 'number', i.number, 'due_date', t.due_text,"
        f" 'days', t.days, 'amount', CAST(CAST({_OWED} AS NUMERIC(20, 2)) AS TEXT))"
    ),
    "sqlite": (
        "json_object('loan_id', l.id, 'number', i.number, 'due_date', t.due_text,"
        f" 'days', t.days, 'amount', printf('%.2f', {_OWED}))"
    ),
}
_INSERT = """
INSERT INTO outbox_messages (dedupe_key, topic, channel, loan_id, language, params,
                             business_date, created_at, status, attempts, next_attempt_at)
WITH t (product_id, due_date, due_text, kind, days, channel) AS (VALUES {values})
SELECT 'reminder:' || i.id || ':' || t.due_text || ':' || t.kind || ':' || t.days,
       'repayment.' || t.kind, t.channel, l.id,
       coalesce((SELECT c.language FROM contracts c WHERE c.loan_id = l.id
                 ORDER BY c.id DESC LIMIT 1), :language),
       {params}, :business_date, :now, 'pending', 0, :send_from
FROM t
JOIN loans l ON l.product_id = t.product_id
JOIN installments i ON i.loan_id = l.id AND i.due_date = t.due_date
WHERE l.status = 'active' AND NOT i.cancelled AND {owed} > 0.004 {in_range}
ON CONFLICT (dedupe_key) DO NOTHING
"""


def plan_reminders(
    session: Session,
    *,
    business_date: date,
    now: datetime,
    lo: int | None = None,
    hi: int | None = None,
    borrower_timezone: str = DEFAULT_BORROWER_TIMEZONE,
) -> int:
    """Enqueue the reminders of `business_date` for active loans with lo <= id < hi (all when
    None); returns how many were added (0 on a second run for the same date).

    Planned in quiet hours, they are due from 08:00 in `borrower_timezone` (the relay checks
    each borrower's own zone again before sending).
    """
    rows: list[dict[str, Any]] = []
    for product_id, config in session.execute(select(Product.id, Product.config)):
        plan = ProductConfig.model_validate(config).servicing_policy.reminders
        for due, reminder in sorted(due_dates(plan, business_date).items()):
            rows.append(
                {
                    "product_id": product_id,
                    "due_date": due,
                    "due_text": due.isoformat(),
                    "kind": reminder.kind,
                    "days": reminder.days,
                    "channel": plan.channel,
                }
            )
    if not rows:
        return 0
    session.flush()
    statement, values = _statement(session, rows, lo=lo, hi=hi)
    values |= {
        "language": DEFAULT_LANGUAGE,
        "business_date": business_date,
        "now": now,
        "send_from": send_from(now, timezone=borrower_timezone, channel="sms"),
    }
    added: int = session.execute(statement, values).rowcount  # type: ignore[attr-defined]
    return added


def _statement(
    session: Session, rows: list[dict[str, Any]], *, lo: int | None, hi: int | None
) -> tuple[Any, dict[str, Any]]:
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    cast = "CAST(:{} AS INTEGER)" if dialect == "postgresql" else ":{}"
    values: dict[str, Any] = {}
    tuples = []
    for n, row in enumerate(rows):
        names = {key: f"{key}_{n}" for key in row}
        values |= {names[key]: value for key, value in row.items()}
        tuples.append(
            f"({cast.format(names['product_id'])}, :{names['due_date']}, "
            f":{names['due_text']}, :{names['kind']}, {cast.format(names['days'])}, "
            f":{names['channel']})"
        )
    in_range = ""
    if lo is not None:
        in_range += " AND l.id >= :lo AND i.loan_id >= :lo"
        values["lo"] = lo
    if hi is not None:
        in_range += " AND l.id < :hi AND i.loan_id < :hi"
        values["hi"] = hi
    sql = _INSERT.format(
        values=", ".join(tuples), params=_PARAMS[dialect], owed=_OWED, in_range=in_range
    )
    typed = [bindparam(f"due_date_{n}", type_=Date()) for n in range(len(rows))]
    typed += [
        bindparam("business_date", type_=Date()),
        bindparam("now", type_=UtcDateTime()),
        bindparam("send_from", type_=UtcDateTime()),
    ]
    return text(sql).bindparams(*typed), values
