"""`mobilend collections ...`: queues, agents, cases, contacts, actions, promises, restructuring
offers and legal referral (JSON out; errors as JSON on stderr with exit code 2)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.orm import Session

from mobilend.cli_common import echo, fail, run
from mobilend.core.errors import MobilendError, ValidationFailed

collections_app = typer.Typer(
    help="Collections: queues, cases, actions under the conduct rules, promises, restructuring.",
    no_args_is_help=True,
)
T = TypeVar("T")
OnOpt = Annotated[str | None, typer.Option("--on", help="business date (default today)")]


def _clock_now() -> datetime:
    from mobilend.core.clock import SystemClock
    from mobilend.settings import get_settings

    return SystemClock(get_settings().timezone).now()


def _day(text: str | None, field: str = "on") -> date:
    if text is None:
        return _clock_now().date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(ValidationFailed(field, "iso-date", f"{field} is a date YYYY-MM-DD, got {text!r}"))


def _amount(text: str, field: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        fail(ValidationFailed(field, "decimal", f"{field} is a decimal number, got {text!r}"))


def _write(command: str, fn: Any) -> Any:
    """Run a changing command in one unit of work, recorded in the audit trail as the OS user."""
    from mobilend.api.audit_cli import cli_actor

    with cli_actor(f"collections {command}"):
        return run(fn)


@collections_app.command("queues")
def queues_command() -> None:
    """Open cases per queue, unassigned ones, overdue amount and exposure."""
    from mobilend.collections import service
    from mobilend.collections.api import queue_json

    echo(run(lambda s: [queue_json(q) for q in service.queue_summary(s)]))


@collections_app.command("cases")
def cases_command(
    queue: Annotated[str | None, typer.Option(help="e.g. M1-low")] = None,
    status: Annotated[str | None, typer.Option(help="open | promised | legal | closed")] = None,
    agent: Annotated[int | None, typer.Option(help="agent id")] = None,
    limit: Annotated[int, typer.Option()] = 100,
) -> None:
    """List cases."""
    from mobilend.collections import service
    from mobilend.collections.api import case_json

    def fn(s: Session) -> list[Any]:
        found = service.list_cases(s, queue=queue, status=status, agent_id=agent, limit=limit)
        return [case_json(s, c) for c in found]

    echo(run(fn))


@collections_app.command("case")
def case_command(case_id: Annotated[int, typer.Argument()]) -> None:
    """One case with its contacts (masked), actions, refused attempts, promises and offers."""
    from mobilend.collections import service
    from mobilend.collections.api import case_detail

    echo(run(lambda s: case_detail(s, service.get_case(s, case_id))))


@collections_app.command("open")
def open_command(loan: Annotated[int, typer.Option(help="loan id")], on: OnOpt = None) -> None:
    """Open the case of a loan delinquent at the last close."""
    from mobilend.collections import service
    from mobilend.collections.api import case_json

    day = _day(on)
    echo(
        _write(
            "open", lambda s: case_json(s, service.open_case(s, loan_id=loan, business_date=day))
        )
    )


@collections_app.command("agent-add")
def agent_add(
    name: Annotated[str, typer.Option()],
    queue: Annotated[list[str], typer.Option(help="a queue worked (repeat the option)")],
    capacity: Annotated[int, typer.Option(help="open cases at most")] = 200,
    role: Annotated[str, typer.Option(help="agent | supervisor | legal")] = "agent",
) -> None:
    """Register a collections agent."""
    from mobilend.collections import service
    from mobilend.collections.api import agent_json

    def fn(s: Session) -> dict[str, Any]:
        agent = service.register_agent(
            s, name=name, role=role, queues_worked=queue, capacity=capacity
        )
        return agent_json(agent, 0)

    echo(_write("agent-add", fn))


@collections_app.command("agents")
def agents_command() -> None:
    """List agents with their queues, capacity and current load (open cases)."""
    from mobilend.collections import service
    from mobilend.collections.api import agent_json

    def fn(s: Session) -> list[Any]:
        return [agent_json(service.get_agent(s, a.id), a.load) for a in service.agent_loads(s)]

    echo(run(fn))


@collections_app.command("assign")
def assign_command(
    case: Annotated[
        int | None, typer.Option(help="case id (default: every unassigned case)")
    ] = None,
    agent: Annotated[int | None, typer.Option(help="agent id (default: least loaded)")] = None,
    queue: Annotated[str | None, typer.Option(help="only this queue (without --case)")] = None,
    on: OnOpt = None,
) -> None:
    """Assign one case (to an agent, or the least loaded), or every unassigned case."""
    from mobilend.collections import service
    from mobilend.collections.api import case_json

    day = _day(on)

    def fn(s: Session) -> Any:
        if case is None:
            return {"assigned": service.assign_cases(s, business_date=day, queue=queue)}
        found = service.assign_case(s, case_id=case, business_date=day, agent_id=agent)
        return case_json(s, found)

    echo(_write("assign", fn))


@collections_app.command("contact-add")
def contact_add(
    loan: Annotated[int, typer.Option(help="loan id")],
    value: Annotated[str, typer.Option(help="phone number, e-mail or address")],
    relation: Annotated[str, typer.Option(help="borrower | emergency_contact")] = "borrower",
    relationship: Annotated[str, typer.Option(help="spouse, parent, ... (named parties)")] = "self",
    kind: Annotated[str, typer.Option(help="phone | email | address")] = "phone",
    timezone: Annotated[str, typer.Option(help="IANA zone")] = "Asia/Shanghai",
    consented_at: Annotated[str | None, typer.Option(help="ISO time of consent")] = None,
    on: OnOpt = None,
) -> None:
    """Register a contact of the loan's borrower or of a party the borrower named."""
    from mobilend.collections import actions
    from mobilend.collections.api import contact_json
    from mobilend.origination.service import cipher_from_settings
    from mobilend.settings import get_settings

    day = _day(on)
    cipher = cipher_from_settings(get_settings())
    consent = datetime.fromisoformat(consented_at) if consented_at else None

    def fn(s: Session) -> dict[str, Any]:
        contact = actions.add_contact(
            s, loan_id=loan, relation=relation, relationship=relationship, kind=kind,
            value=value, timezone=timezone, consented_at=consent, cipher=cipher,
            business_date=day,
        )  # fmt: skip
        return contact_json(contact)

    echo(_write("contact-add", fn))


@collections_app.command("act")
def act_command(
    case: Annotated[int, typer.Option(help="case id")],
    agent: Annotated[int, typer.Option(help="agent id")],
    channel: Annotated[str, typer.Option(help="call | sms | visit | letter | email")],
    outcome: Annotated[str, typer.Option(help="answered, no_answer, sent, ...")],
    contact: Annotated[int | None, typer.Option(help="contact id")] = None,
    value: Annotated[str | None, typer.Option(help="or a number/address not registered")] = None,
    kind: Annotated[str, typer.Option(help="kind of --value")] = "phone",
    purpose: Annotated[str, typer.Option(help="collect | locate")] = "collect",
    note: Annotated[str, typer.Option()] = "",
) -> None:
    """Record a contact made now; refused by a conduct rule, it is logged and exits 2."""
    from mobilend.api.audit_cli import cli_actor
    from mobilend.cli_common import session_scope
    from mobilend.collections import actions
    from mobilend.collections.api import action_json
    from mobilend.collections.conduct import ConductViolation
    from mobilend.origination.service import cipher_from_settings
    from mobilend.settings import get_settings

    now = _clock_now()
    try:
        point = None
        if value is not None:
            point = actions.contact_point_of(cipher_from_settings(get_settings()), kind, value)
        args: dict[str, Any] = {
            "case_id": case, "agent_id": agent, "channel": channel, "at": now,
            "contact_id": contact, "contact_point": point,
        }  # fmt: skip
        with cli_actor("collections act"):
            try:
                with session_scope() as s:
                    made = actions.record_action(
                        s, now=now, outcome=outcome, purpose=purpose, note=note, **args
                    )
                    out = action_json(made)
            except ConductViolation as refused:
                with session_scope() as s:
                    actions.log_refusal(s, violation=refused, **args)
                raise
    except MobilendError as exc:
        fail(exc)
    echo(out)


@collections_app.command("promise")
def promise_command(
    case: Annotated[int, typer.Option(help="case id")],
    amount: Annotated[str, typer.Option(help="e.g. 500.00")],
    due: Annotated[str, typer.Option(help="promised date YYYY-MM-DD")],
    agent: Annotated[int | None, typer.Option(help="agent id")] = None,
    on: OnOpt = None,
) -> None:
    """Record a promise to pay."""
    from mobilend.collections import arrangements
    from mobilend.collections.api import promise_json

    day, due_on, value = _day(on), _day(due, "due"), _amount(amount, "amount")
    echo(
        _write(
            "promise",
            lambda s: promise_json(
                arrangements.make_promise(
                    s,
                    case_id=case,
                    amount=value,
                    due_date=due_on,
                    business_date=day,
                    agent_id=agent,
                )
            ),
        )
    )


@collections_app.command("offer")
def offer_command(
    case: Annotated[int, typer.Option(help="case id")],
    extend: Annotated[int, typer.Option(help="extra installments (months)")] = 0,
    installment: Annotated[str | None, typer.Option(help="reduced installment")] = None,
    on: OnOpt = None,
) -> None:
    """Price a restructuring offer (term extension and/or reduced installment)."""
    from mobilend.collections import arrangements
    from mobilend.collections.api import restructuring_json

    day = _day(on)
    level = _amount(installment, "installment") if installment is not None else None

    def fn(s: Session) -> dict[str, Any]:
        offer = arrangements.offer_restructuring(
            s, case_id=case, business_date=day, extension_months=extend, new_installment=level
        )
        return restructuring_json(offer)

    echo(_write("offer", fn))


@collections_app.command("accept")
def accept_command(
    offer: Annotated[int, typer.Argument(help="offer id")], on: OnOpt = None
) -> None:
    """Accept a restructuring offer: the loan's schedule changes."""
    from mobilend.collections import arrangements
    from mobilend.collections.api import restructuring_json

    day = _day(on)
    echo(
        _write(
            "accept",
            lambda s: restructuring_json(
                arrangements.accept_restructuring(s, restructuring_id=offer, business_date=day)
            ),
        )
    )


@collections_app.command("escalate")
def escalate_command(
    case: Annotated[int, typer.Option(help="case id")],
    reason: Annotated[str, typer.Option()],
    agent: Annotated[int | None, typer.Option(help="agent id")] = None,
    on: OnOpt = None,
) -> None:
    """Refer a case to legal review (from the product's legal_after_dpd)."""
    from mobilend.collections import arrangements
    from mobilend.collections.api import legal_json

    day = _day(on)
    echo(
        _write(
            "escalate",
            lambda s: legal_json(
                arrangements.escalate_to_legal(
                    s, case_id=case, business_date=day, reason=reason, agent_id=agent
                )
            ),
        )
    )
