"""An app on a migrated database (SQLite and PostgreSQL) with an admin and a viewer credential."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.core.clock import FixedClock
from mobilend.db.session import session_factory, unit_of_work
from mobilend.settings import Settings


@dataclass
class Api:
    client: TestClient
    clock: FixedClock
    admin: dict[str, str]
    viewer: dict[str, str]

    def set_today(self, y: int, m: int, d: int) -> None:
        self.clock.current = datetime(y, m, d, 12, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    clock = FixedClock(datetime(2025, 1, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    app = create_app(Settings(database_url=db_url, log_schedule=False), clock=clock)
    with unit_of_work(session_factory(app.state.engine)) as session:
        _, admin = create_credential(session, name="test-admin", role="admin")
        _, viewer = create_credential(session, name="test-viewer", role="viewer")
    with TestClient(app) as client:
        yield Api(
            client,
            clock,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {viewer}"},
        )
    app.state.engine.dispose()
