"""Collections use cases: cases, agents, queues and assignment, and the daily step of the close.

Actions and contacts are in collections.actions; promises, restructuring and legal referral in
collections.arrangements. Every function takes the caller's unit of work and a business date;
none commits and none reads a clock.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.collections import queues
from mobilend.collections.models import AGENT_ROLES, CollectionAgent, CollectionCase
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.core.money import ZERO
from mobilend.loans.models import Loan, Product
from mobilend.loans.service import lock_loan, write_off
from mobilend.servicing.delinquency import delinquency
from mobilend.servicing.models import LoanDelinquency
from mobilend.servicing.policy import ServicingPolicy
from mobilend.servicing.status import dues_of

DAILY_COUNTS = (
    "promises_kept",
    "promises_broken",
    "written_off",
    "opened",
    "closed",
    "requeued",
    "assigned",
)


# ---------------------------------------------------------------- policy and look-ups


def policy_of(session: Session, loan: Loan) -> ServicingPolicy:
    """The servicing policy of the loan's product (read at each use, never frozen)."""
    product = session.get(Product, loan.product_id)
    assert product is not None
    return ServicingPolicy.model_validate(product.config.get("servicing_policy", {}))


def get_case(session: Session, case_id: int, *, lock: bool = False) -> CollectionCase:
    query = select(CollectionCase).where(CollectionCase.id == case_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    case = session.scalar(query)
    if case is None:
        raise NotFound(f"collection case {case_id} not found", field="case_id")
    return case


def open_case_of(session: Session, loan_id: int) -> CollectionCase | None:
    return session.scalar(
        select(CollectionCase).where(
            CollectionCase.loan_id == loan_id, CollectionCase.status != "closed"
        )
    )


def delinquency_of(session: Session, loan_id: int) -> LoanDelinquency | None:
    return session.get(LoanDelinquency, loan_id)


def require_open(case: CollectionCase) -> None:
    if case.status == "closed":
        raise Conflict(f"case {case.id} is closed", field="case_id", rule="case-closed")


# ---------------------------------------------------------------- agents


def register_agent(
    session: Session, *, name: str, role: str, queues_worked: list[str], capacity: int
) -> CollectionAgent:
    if role not in AGENT_ROLES:
        raise ValidationFailed("role", "one-of", f"role is one of {AGENT_ROLES}")
    if not queues_worked:
        raise ValidationFailed("queues", "non-empty", "an agent works at least one queue")
    for name_ in queues_worked:
        queues.check_queue_name(name_)
    if not 1 <= capacity <= 10_000:
        raise ValidationFailed("capacity", "range", "capacity is 1-10000 open cases")
    if session.scalar(select(CollectionAgent.id).where(CollectionAgent.name == name)):
        raise Conflict(f"agent {name!r} exists", field="name", rule="unique-name")
    agent = CollectionAgent(
        name=name, role=role, queues=sorted(set(queues_worked)), capacity=capacity, active=True
    )
    session.add(agent)
    session.flush()
    return agent


def get_agent(session: Session, agent_id: int) -> CollectionAgent:
    agent = session.get(CollectionAgent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found", field="agent_id")
    return agent


def agent_loads(session: Session) -> list[queues.AgentLoad]:
    load = dict(
        session.execute(
            select(CollectionCase.agent_id, func.count())
            .where(CollectionCase.status != "closed", CollectionCase.agent_id.is_not(None))
            .group_by(CollectionCase.agent_id)
        ).all()
    )
    return [
        queues.AgentLoad(a.id, frozenset(a.queues), a.capacity, int(load.get(a.id, 0)), a.active)
        for a in session.scalars(select(CollectionAgent).order_by(CollectionAgent.id))
    ]


# ---------------------------------------------------------------- cases


def open_case(session: Session, *, loan_id: int, business_date: date) -> CollectionCase:
    """Open the case of a delinquent loan (the daily step does this for every such loan)."""
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    row = delinquency_of(session, loan_id)
    if loan.status != "active" or row is None or row.dpd <= 0:
        raise Conflict(
            f"loan {loan_id} is not delinquent at the last close", field="loan_id",
            rule="not-delinquent",
        )  # fmt: skip
    if open_case_of(session, loan_id) is not None:
        raise Conflict(
            f"loan {loan_id} already has an open case", field="loan_id", rule="open-case"
        )
    return _new_case(session, loan_id, row, business_date)


def _new_case(
    session: Session, loan_id: int, row: LoanDelinquency, business_date: date
) -> CollectionCase:
    case = _case_for(loan_id, row, business_date)
    session.add(case)
    session.flush()
    return case


def _case_for(loan_id: int, row: LoanDelinquency, business_date: date) -> CollectionCase:
    return CollectionCase(
        loan_id=loan_id,
        queue=queues.queue_for(row.bucket, provision=row.provision, broken_promises=0),
        status="open",
        opened_on=business_date,
        dpd_at_open=row.dpd,
        broken_promises=0,
        do_not_contact=False,
    )


def assign_case(
    session: Session, *, case_id: int, business_date: date, agent_id: int | None = None
) -> CollectionCase:
    """Assign (or reassign) a case: to `agent_id`, or to the least-loaded agent with room."""
    case = get_case(session, case_id, lock=True)
    require_open(case)
    if agent_id is None:
        chosen = queues.pick_agent(
            [a for a in agent_loads(session) if a.id != case.agent_id], case.queue
        )
        if chosen is None:
            raise Conflict(
                f"no active agent with room works queue {case.queue}", field="agent_id",
                rule="no-agent",
            )  # fmt: skip
        agent_id = chosen.id
    else:
        _check_agent_takes(session, case, agent_id)
    case.agent_id, case.assigned_on = agent_id, business_date
    session.flush()
    return case


def _check_agent_takes(session: Session, case: CollectionCase, agent_id: int) -> None:
    agent = get_agent(session, agent_id)
    load = next(a for a in agent_loads(session) if a.id == agent_id)
    if not agent.active:
        raise Conflict(f"agent {agent_id} is inactive", field="agent_id", rule="agent-inactive")
    if case.queue not in agent.queues:
        raise Conflict(
            f"agent {agent_id} does not work queue {case.queue}", field="agent_id",
            rule="agent-queue",
        )  # fmt: skip
    if case.agent_id != agent_id and load.load >= agent.capacity:
        raise Conflict(
            f"agent {agent_id} carries {load.load} cases, the capacity", field="agent_id",
            rule="agent-capacity",
        )  # fmt: skip


def assign_cases(session: Session, *, business_date: date, queue: str | None = None) -> int:
    """Give every unassigned open case (of `queue`, or all) to an agent with room, by load."""
    query = select(CollectionCase).where(
        CollectionCase.status != "closed", CollectionCase.agent_id.is_(None)
    )
    if queue is not None:
        query = query.where(CollectionCase.queue == queue)
    agents = agent_loads(session)
    assigned = 0
    for case in session.scalars(query.order_by(CollectionCase.id)).all():
        chosen = queues.pick_agent(agents, case.queue)
        if chosen is None:
            continue
        case.agent_id, case.assigned_on = chosen.id, business_date
        chosen.load += 1
        assigned += 1
    session.flush()
    return assigned


def set_do_not_contact(session: Session, *, case_id: int, flag: bool) -> CollectionCase:
    """Flag the borrower do-not-contact (complaint, legal representation): letters only."""
    case = get_case(session, case_id, lock=True)
    case.do_not_contact = flag
    session.flush()
    return case


def list_cases(
    session: Session,
    *,
    queue: str | None = None,
    status: str | None = None,
    agent_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[CollectionCase]:
    query = select(CollectionCase).where(CollectionCase.id > after_id)
    if queue is not None:
        query = query.where(CollectionCase.queue == queue)
    if status is not None:
        query = query.where(CollectionCase.status == status)
    if agent_id is not None:
        query = query.where(CollectionCase.agent_id == agent_id)
    return list(session.scalars(query.order_by(CollectionCase.id).limit(limit)))


def queue_summary(session: Session) -> list[dict[str, Any]]:
    """Per queue: open cases, unassigned ones, and the loans' overdue amount and exposure."""
    rows = session.execute(
        select(CollectionCase.queue, CollectionCase.agent_id, LoanDelinquency)
        .join(LoanDelinquency, LoanDelinquency.loan_id == CollectionCase.loan_id, isouter=True)
        .where(CollectionCase.status != "closed")
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for queue, agent_id, row in rows:
        entry = out.setdefault(
            queue, {"queue": queue, "cases": 0, "unassigned": 0, "overdue": ZERO, "exposure": ZERO}
        )
        entry["cases"] += 1
        entry["unassigned"] += agent_id is None
        if row is not None:
            entry["overdue"] += _overdue(row)
            entry["exposure"] += row.exposure
    return [out[name] for name in sorted(out)]


def _overdue(row: LoanDelinquency) -> Decimal:
    return row.overdue_principal + row.overdue_interest + row.overdue_fee + row.overdue_penalty


# ---------------------------------------------------------------- the daily step


def daily(session: Session, *, business_date: date, now: datetime) -> dict[str, int]:
    """The close's collections step, once delinquency is refreshed for `business_date`.

    In order: grade open promises (kept ones release the case, broken ones re-queue it in the
    high segment, unassigned); write off active loans whose DPD, refreshed for this date,
    exceeds the product's write_off_after_dpd; open a case for each delinquent active loan
    without one and move open cases to their bucket's queue; close the cases of cured, repaid
    or written-off loans; assign unassigned cases. Running it twice for one date changes
    nothing the second time.
    `now` is the close's moment; nothing here depends on it (kept for the close's interface).
    """
    from mobilend.collections.arrangements import grade_promises

    counts: Counter[str] = Counter(dict.fromkeys(DAILY_COUNTS, 0))
    kept, broken = grade_promises(session, business_date=business_date)
    counts.update(promises_kept=kept, promises_broken=broken, requeued=broken)
    counts["written_off"] = _write_offs(session, business_date)
    _sync_cases(session, business_date, counts)
    counts["assigned"] = assign_cases(session, business_date=business_date)
    return {name: counts[name] for name in DAILY_COUNTS}


def _delinquent(session: Session) -> list[LoanDelinquency]:
    """Delinquency rows of active loans past due (no Loan entities: they drag installments)."""
    return list(
        session.scalars(
            select(LoanDelinquency)
            .join(Loan, Loan.id == LoanDelinquency.loan_id)
            .where(Loan.status == "active", LoanDelinquency.dpd > 0)
            .order_by(LoanDelinquency.loan_id)
        )
    )


def _write_offs(session: Session, business_date: date) -> int:
    """Write off loans past their product's DPD limit, found in SQL (a few a day)."""
    done = 0
    for product in session.scalars(select(Product)):
        policy = ServicingPolicy.model_validate(product.config.get("servicing_policy", {}))
        limit = policy.write_off_after_dpd
        if limit is None:
            continue
        due = session.scalars(
            select(LoanDelinquency.loan_id)
            .join(Loan, Loan.id == LoanDelinquency.loan_id)
            .where(
                Loan.product_id == product.id,
                Loan.status == "active",
                LoanDelinquency.business_date == business_date,  # a DPD this close computed
                LoanDelinquency.dpd > limit,
            )
            .order_by(LoanDelinquency.loan_id)
        ).all()
        for loan_id in due:
            if _still_past(session, loan_id, business_date, limit):
                write_off(
                    session, loan_id=loan_id, value_date=business_date, business_date=business_date
                )
                done += 1
    return done


def _still_past(session: Session, loan_id: int, business_date: date, limit: int) -> bool:
    """Re-check under the loan's lock: a payment since the loan step (the close runs after
    midnight, the API already works on the next date) may have cured it or moved it on; such a
    loan waits for the next close instead of being written off on a stale figure."""
    loan = lock_loan(session, loan_id)
    if loan.status != "active" or (loan.accrued_through or business_date) > business_date:
        return False
    live = [i for i in loan.installments if not i.cancelled]
    return delinquency(dues_of(live), business_date).days_past_due > limit


def _sync_cases(session: Session, business_date: date, counts: Counter[str]) -> None:
    cases = {
        c.loan_id: c
        for c in session.scalars(select(CollectionCase).where(CollectionCase.status != "closed"))
    }
    delinquent = {row.loan_id: row for row in _delinquent(session)}
    agents = {a.id: a for a in session.scalars(select(CollectionAgent))}
    for loan_id, row in delinquent.items():
        case = cases.get(loan_id)
        if case is None:
            session.add(_case_for(loan_id, row, business_date))  # inserted in batches
            counts["opened"] += 1
        elif case.status != "legal":
            counts["requeued"] += _requeue(case, row, agents)
    session.flush()
    gone = [loan_id for loan_id in cases if loan_id not in delinquent]
    statuses = dict(session.execute(select(Loan.id, Loan.status).where(Loan.id.in_(gone))).all())
    for loan_id in gone:
        case = cases[loan_id]
        status = statuses[loan_id]
        reason = {"active": "cured", "closed": "repaid"}.get(status, status)
        case.status, case.closed_on, case.close_reason = "closed", business_date, reason[:16]
        counts["closed"] += 1
    session.flush()


def _requeue(case: CollectionCase, row: LoanDelinquency, agents: dict[int, CollectionAgent]) -> int:
    queue = queues.queue_for(
        row.bucket, provision=row.provision, broken_promises=case.broken_promises
    )
    if queue == case.queue:
        return 0
    case.queue = queue
    agent = agents.get(case.agent_id) if case.agent_id is not None else None
    if agent is not None and queue not in agent.queues:
        case.agent_id, case.assigned_on = None, None
    return 1
