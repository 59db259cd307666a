"""Shared fixtures: migrated databases on SQLite and PostgreSQL.

Integration tests take the `db_url` fixture, which runs each test on both backends.
PostgreSQL comes from MOBILEND_TEST_PG_URL (default: the local server, trust auth). When it is
unreachable the PostgreSQL cases are skipped, except in CI (CI=true) where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from mobilend.db.migrate import upgrade
from mobilend.db.session import normalize_url

PG_URL = os.environ.get(
    "MOBILEND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Apps made by tests do not run the log's background timetable (tests call it directly).
os.environ.setdefault("MOBILEND_LOG_SCHEDULE", "false")
os.environ.setdefault("MOBILEND_CLOSE_SCHEDULE", "false")  # tests close dates themselves


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    url = make_url(normalize_url(PG_URL))
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (one per xdist worker)."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    name = f"mobilend_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(normalize_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        from mobilend.db.session import engine_for

        engine_for.cache_clear()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "mobilend.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url
    url: str = request.getfixturevalue("pg_server")
    return url


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template of `isolated_db_url` copies."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    name = f"mobilend_tpl_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(normalize_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    from mobilend.db.session import engine_for

    engine_for.cache_clear()  # no open connection may remain on a template
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def isolated_db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """Like db_url, but a database of the test's own on PostgreSQL too (for whole-book jobs
    such as mark-to-market, whose figures other tests' rows would change)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/mobilend.db"
        upgrade(url)
        yield url
        return
    yield from _pg_copy(request.getfixturevalue("pg_template"))


@pytest.fixture
def isolated_pg_url(pg_template: str) -> Iterator[str]:
    """A PostgreSQL database of the test's own (for PostgreSQL-only paths)."""
    yield from _pg_copy(pg_template)


@pytest.fixture
def twin_pg(pg_template: str) -> Iterator[tuple[str, str]]:
    """Two PostgreSQL databases of the test's own (to run two paths on the same book)."""
    first, second = _pg_copy(pg_template), _pg_copy(pg_template)
    try:
        yield next(first), next(second)
    finally:
        for copy in (first, second):
            copy.close()


def _pg_copy(template: str) -> Iterator[str]:
    name = f"mobilend_iso_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_url(normalize_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from mobilend.db.session import engine_for

        engine_for.cache_clear()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
