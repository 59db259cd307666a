"""The server's close schedule on SQLite: yesterday once past close_time, missed days in order."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from mobilend.db.migrate import upgrade
from mobilend.servicing import close
from mobilend.servicing.schedule import next_due, run_due
from tests.integration.close_book import book
from tests.integration.helpers import Db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = time(0, 30)


def _at(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(UTC)


def test_next_due() -> None:
    zone = "Asia/Shanghai"
    # 2023-12-21 00:29 in Shanghai is too early; 00:30 closes yesterday, 2023-12-20
    assert next_due(None, _at(2023, 12, 21, 0, 29), timezone=zone, at=AT) is None
    assert next_due(None, _at(2023, 12, 21, 0, 30), timezone=zone, at=AT) == date(2023, 12, 20)
    # 2023-12-20 16:45 UTC is already 00:45 on the 21st in Shanghai
    assert next_due(None, datetime(2023, 12, 20, 16, 45, tzinfo=UTC), timezone=zone, at=AT) == (
        date(2023, 12, 20)
    )
    assert next_due(date(2023, 12, 20), _at(2023, 12, 21, 9, 0), timezone=zone, at=AT) is None
    assert next_due(date(2023, 12, 18), _at(2023, 12, 21, 9, 0), timezone=zone, at=AT) == (
        date(2023, 12, 19)
    )


def test_run_due_closes_missed_days_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    db = Db(url)
    book(db, random.Random(1), count=4)
    clock = lambda: _at(2023, 12, 21, 1, 0)  # noqa: E731

    def due() -> dict[str, object] | None:
        return run_due(
            db.factory,
            now=clock(),
            clock=clock,
            timezone="Asia/Shanghai",
            at=AT,
            data_dir=tmp_path,
            partition_size=10,
        )

    first = due()
    assert first is not None and first["business_date"] == "2023-12-20"
    assert first["status"] == "done" and first["loans_done"] == 4
    assert due() is None  # closed once
    later = lambda: _at(2023, 12, 23, 1, 0)  # noqa: E731
    clock = later
    caught_up = [due() for _ in range(2)]
    assert [r and r["business_date"] for r in caught_up] == ["2023-12-21", "2023-12-22"]
    assert due() is None
    runs = db(lambda s: close.list_runs(s))
    assert [r["business_date"] for r in runs] == ["2023-12-22", "2023-12-21", "2023-12-20"]
    assert {r["requested_by"] for r in runs} == {"schedule"}
