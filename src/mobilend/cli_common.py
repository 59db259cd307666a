"""Helpers the CLI's command groups share: JSON out, errors as JSON on stderr, a unit of work.

Nothing here imports the database at module level, so an offline command (`mobilend log
verify`) stays free of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from mobilend.core.errors import MobilendError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


def echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def fail(exc: MobilendError) -> NoReturn:
    """Print `{"error": {type, detail, field, rule}}` on stderr and exit 2."""
    problem = {"type": exc.type, "detail": exc.detail, "field": exc.field, "rule": exc.rule}
    typer.echo(json.dumps({"error": problem}, ensure_ascii=False), err=True)
    raise typer.Exit(2)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work on the configured database (committed on success)."""
    from mobilend.db.session import build_engine, session_factory, unit_of_work
    from mobilend.settings import get_settings

    engine = build_engine(get_settings().database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def run(fn: Callable[[Session], T]) -> T:
    """`fn` in one unit of work; a domain error becomes the JSON error and exit code 2."""
    try:
        with session_scope() as session:
            return fn(session)
    except MobilendError as exc:
        fail(exc)
