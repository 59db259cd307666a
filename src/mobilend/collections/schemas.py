"""Request bodies of the collections API. Money is a decimal string, never a JSON float."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator

from mobilend.loans.schemas import Pos, no_float
from mobilend.loans.schemas import Strict as _Strict


class AgentIn(_Strict):
    name: str = Field(min_length=1, max_length=80)
    role: Literal["agent", "supervisor", "legal"] = "agent"
    queues: list[str] = Field(min_length=1, max_length=50)
    capacity: int = Field(ge=1, le=10_000)


class CaseIn(_Strict):
    loan_id: int


class AssignIn(_Strict):
    agent_id: int | None = None  # None: the least-loaded agent with room


class AssignAllIn(_Strict):
    queue: str | None = None


class DoNotContactIn(_Strict):
    do_not_contact: bool


class ContactIn(_Strict):
    relation: Literal["borrower", "emergency_contact", "third_party"]
    relationship: str = Field(default="self", max_length=24)
    kind: Literal["phone", "email", "address"] = "phone"
    value: str = Field(min_length=1, max_length=300)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    consented_at: datetime | None = None


class ActionIn(_Strict):
    """A contact made: to a registered contact (`contact_id`) or to a `value` (phone number,
    e-mail or address) of `kind`, which is checked as whoever it belongs to."""

    agent_id: int
    channel: str = Field(max_length=16)
    outcome: str = Field(max_length=24)
    contact_id: int | None = None
    kind: Literal["phone", "email", "address"] = "phone"
    value: str | None = Field(default=None, max_length=300)
    purpose: Literal["collect", "locate"] = "collect"
    at: datetime | None = None  # default: now
    note: str = Field(default="", max_length=500)


class PromiseIn(_Strict):
    amount: Pos
    due_date: date
    agent_id: int | None = None

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class RestructureOfferIn(_Strict):
    extension_months: int = Field(default=0, ge=0, le=600)
    new_installment: Pos | None = None

    _floats = field_validator("*", mode="before")(classmethod(lambda cls, v: no_float(v)))


class EscalateIn(_Strict):
    reason: str = Field(min_length=1, max_length=300)
    agent_id: int | None = None
