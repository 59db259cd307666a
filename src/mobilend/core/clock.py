"""Business clock: services take a date; only the edges (routes, CLI) read a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def today(self) -> date: ...

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class SystemClock:
    timezone: str = "Asia/Shanghai"

    def now(self) -> datetime:
        return datetime.now(ZoneInfo(self.timezone))

    def today(self) -> date:
        return self.now().date()


@dataclass
class FixedClock:
    """A settable clock for tests and back-dated operations."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def today(self) -> date:
        return self.current.date()
