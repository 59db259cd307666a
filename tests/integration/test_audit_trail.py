"""The audit trail's recorder on SQLite and PostgreSQL: change rows commit with their change and
vanish with its rollback (savepoints too), nothing is recorded without an actor, the table is
append-only in the database, and a CLI command records its OS user."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from mobilend.api import audit
from mobilend.api.audit_models import AuditEvent
from mobilend.db.session import unit_of_work
from mobilend.loans import service
from mobilend.loans.models import Product
from mobilend.loans.schemas import ProductIn
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration


def _code() -> str:
    return f"A{uuid.uuid4().hex[:10]}"


def _rows(db: Db, correlation_id: str) -> list[AuditEvent]:
    return db(
        lambda s: list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.correlation_id == correlation_id)
                .order_by(AuditEvent.id)
            )
        )
    )


def test_a_committed_change_has_its_rows_a_rolled_back_one_none(db_url: str) -> None:
    db = Db(db_url)
    code = _code()
    with audit.acting_as("tester", "admin", source="test") as ctx:
        product = db(lambda s: service.create_product(s, ProductIn(code=code, name="before")))
        db(lambda s: setattr(s.get(Product, product.id), "name", "after"))
    rows = _rows(db, ctx.correlation_id)
    assert [(r.kind, r.action, r.table_name, r.record_id) for r in rows] == [
        ("change", "insert", "products", str(product.id)),
        ("change", "update", "products", str(product.id)),
    ]
    assert rows[0].changes is not None and rows[0].changes["code"] == {
        "before": None,
        "after": code,
    }
    assert rows[1].changes == {"name": {"before": "before", "after": "after"}}
    assert (rows[1].actor, rows[1].role, rows[1].source) == ("tester", "admin", "test")

    lost = _code()
    with (
        audit.acting_as("tester", "admin", source="test") as ctx,
        pytest.raises(RuntimeError),
        unit_of_work(db.factory) as session,
    ):
        service.create_product(session, ProductIn(code=lost, name="x"))
        session.flush()  # the change and its notes exist in the transaction...
        raise RuntimeError("...which is rolled back")
    assert _rows(db, ctx.correlation_id) == []
    assert db(lambda s: s.scalar(select(Product.id).where(Product.code == lost))) is None


def test_a_rolled_back_savepoint_leaves_no_rows(db_url: str) -> None:
    db = Db(db_url)
    kept, dropped = _code(), _code()
    with (
        audit.acting_as("tester", "admin", source="test") as ctx,
        unit_of_work(db.factory) as session,
    ):
        service.create_product(session, ProductIn(code=kept, name="kept"))
        savepoint = session.begin_nested()
        service.create_product(session, ProductIn(code=dropped, name="dropped"))
        session.flush()
        savepoint.rollback()
    rows = _rows(db, ctx.correlation_id)
    assert [r.changes["code"]["after"] for r in rows if r.changes] == [kept]


def test_nothing_is_recorded_without_an_actor(db_url: str) -> None:
    db = Db(db_url)
    product = db(lambda s: service.create_product(s, ProductIn(code=_code(), name="x")))
    found = db(
        lambda s: s.scalar(
            select(AuditEvent.id).where(
                AuditEvent.table_name == "products", AuditEvent.record_id == str(product.id)
            )
        )
    )
    assert found is None


def test_many_rows_of_a_table_become_one_summary(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "MAX_ROWS_PER_TABLE", 2)
    db = Db(db_url)
    with audit.acting_as("tester", "admin", source="test") as ctx:
        ids = db(
            lambda s: [
                service.create_product(s, ProductIn(code=_code(), name="bulk")).id for _ in range(3)
            ]
        )
    (row,) = _rows(db, ctx.correlation_id)
    assert (row.table_name, row.action, row.record_id, row.changes) == (
        "products",
        "insert",
        "*",
        None,
    )
    assert row.detail == {"summarized": True, "rows": 3, "record_ids": [str(i) for i in ids[:2]]}


def test_audit_events_are_append_only_in_the_database(db_url: str) -> None:
    db = Db(db_url)
    with audit.acting_as("tester", "admin", source="test") as ctx:
        db(lambda s: service.create_product(s, ProductIn(code=_code(), name="x")))
    (row,) = _rows(db, ctx.correlation_id)
    for sql in (
        "UPDATE audit_events SET actor = 'someone else' WHERE id = :i",
        "UPDATE audit_events SET changes = NULL WHERE id = :i",
        "DELETE FROM audit_events WHERE id = :i",
    ):
        with pytest.raises(DBAPIError):
            db(lambda s: s.execute(text(sql), {"i": row.id}))
    if db_url.startswith("postgresql"):
        with pytest.raises(DBAPIError):
            db(lambda s: s.execute(text("TRUNCATE audit_events")))
    (again,) = _rows(db, ctx.correlation_id)
    assert (again.actor, again.changes) == ("tester", row.changes)


def test_masking_and_plain_values() -> None:
    for column in ("name_enc", "phone_index", "token_hash", "public_key", "otp_code_hash"):
        assert audit.is_masked("any", column), column
    assert audit.is_masked("borrowers", "birth_date")
    assert not audit.is_masked("installments", "paid_principal")
    assert not audit.is_masked("decision_records", "record_hash")  # a digest, not a secret
    assert audit.plain(Decimal("497.51")) == "497.51"
    assert audit.plain(date(2025, 2, 10)) == "2025-02-10"
    assert audit.plain({"a": [Decimal("1.0"), b"\x01\xff"]}) == {"a": ["1.0", "01ff"]}


def test_a_cli_command_records_its_os_user(db_url: str) -> None:
    env = {**os.environ, "MOBILEND_DATABASE_URL": db_url}
    cli = [sys.executable, "-m", "mobilend.cli"]
    name = f"cli-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [*cli, "credentials", "create", "--name", name, "--role", "viewer"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    credential = json.loads(made.stdout)
    listed = subprocess.run(
        [*cli, "audit", "list", "--actor", f"os:{getpass.getuser()}", "--limit", "500", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    row = next(
        r
        for r in rows
        if r["table"] == "api_credentials" and r["record_id"] == str(credential["id"])
    )
    assert (row["kind"], row["action"], row["role"], row["source"], row["route"]) == (
        "change",
        "insert",
        "cli",
        "cli",
        "credentials create",
    )
    assert row["changes"]["name"] == {"before": None, "after": name}
    assert row["changes"]["token_hash"] == {"changed": True}
    assert credential["token"] not in listed.stdout


def test_large_values_are_recorded_by_digest() -> None:
    from sqlalchemy import Column, LargeBinary

    column = Column("document", LargeBinary)
    document = b"%PDF" + bytes(5000)
    assert audit._stored(column, document) == {
        "sha256": hashlib.sha256(document).hexdigest(),
        "size": 5004,  # 4 + 5000 bytes
    }
    assert audit._stored(column, b"\x01\xff") == "01ff"
