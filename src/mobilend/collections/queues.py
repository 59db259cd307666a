"""Collection queues and balanced assignment (pure).

A case's queue is its loan's delinquency bucket (from the product's bucket scheme: M1, M2,
M3+ by default) and a risk segment, e.g. "M1-low", "M2-high"; cases referred to legal review
sit in the "legal" queue. The segment is **high** when

- the loan's provision (its expected loss from the last close: PD x LGD x exposure, net of
  the phone's value where the product says so) is at least `HIGH_PROVISION` (500 in the loan's
  currency), or
- a promise to pay on the case has been broken (a broken promise moves the case up);

otherwise **low**. A money figure, not a PD alone, because under expected-loss provisioning
the PD is the bucket's, the same for every loan in the queue: the provision ranks the loans of
one bucket by what the lender stands to lose.

Assignment is balanced by load: among the active agents who work the queue and have room
(open cases < capacity), the one with the lowest load relative to capacity, then the fewest
cases, then the lowest id. No agent with room: the case waits unassigned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from mobilend.core.errors import ValidationFailed

HIGH_PROVISION = Decimal("500")
LEGAL_QUEUE = "legal"
SEGMENTS = ("low", "high")
_QUEUE = re.compile(r"^(legal|[A-Za-z0-9+]{1,16}-(low|high))$")


def segment(*, provision: Decimal, broken_promises: int) -> str:
    """ "high" or "low" by the rule in the module notes."""
    return "high" if provision >= HIGH_PROVISION or broken_promises > 0 else "low"


def queue_for(bucket: str, *, provision: Decimal, broken_promises: int) -> str:
    return f"{bucket}-{segment(provision=provision, broken_promises=broken_promises)}"


def check_queue_name(name: str, *, field: str = "queues") -> str:
    if not _QUEUE.match(name):
        raise ValidationFailed(
            field,
            "queue-name",
            f"{name!r} is not a queue: '<bucket>-low', '<bucket>-high', 'legal'",
        )
    return name


@dataclass
class AgentLoad:
    """An agent as assignment sees them: the queues they work, their room and current load."""

    id: int
    queues: frozenset[str]
    capacity: int
    load: int
    active: bool = True

    def can_take(self, queue: str) -> bool:
        return self.active and queue in self.queues and self.load < self.capacity


def pick_agent(agents: Sequence[AgentLoad], queue: str) -> AgentLoad | None:
    """The agent a new case of `queue` goes to, or None when nobody has room."""
    eligible = [a for a in agents if a.can_take(queue)]
    if not eligible:
        return None
    return min(eligible, key=lambda a: (Fraction(a.load, a.capacity), a.load, a.id))
