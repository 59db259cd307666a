"""`mobilend notify ...`: run the relay, list outbox messages (JSON out)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from mobilend.cli_common import echo, fail, run
from mobilend.core.errors import MobilendError

notify_app = typer.Typer(
    help="Borrower notifications: relay the outbox (SMS, push, e-mail), list messages.",
    no_args_is_help=True,
)


@notify_app.command("relay")
def relay(
    once: Annotated[bool, typer.Option(help="send what is due now, print totals, exit")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="messages per pass (default setting)")
    ] = None,
    interval: Annotated[float, typer.Option(help="seconds between passes when idle")] = 5.0,
) -> None:
    """Send due messages through the configured channels (docs/notifications.md).

    Without --once it keeps running (Ctrl-C stops it) and prints one JSON line per pass that
    did something; several relays may run at once against PostgreSQL.
    """
    from mobilend.core.clock import SystemClock
    from mobilend.db.session import build_engine, session_factory
    from mobilend.notify.channels import channels_from_settings
    from mobilend.notify.relay import RelayConfig, relay_pending, relay_until_idle
    from mobilend.settings import get_settings

    settings = get_settings()
    try:
        channels = channels_from_settings(settings)
        config = RelayConfig.from_settings(settings)
    except MobilendError as exc:
        fail(exc)
    batch = limit or settings.notify_batch_size
    clock = SystemClock(settings.timezone)
    engine = build_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if once:
            total = relay_until_idle(
                sessions, clock=clock.now, channels=channels, config=config, limit=batch
            )
            echo(total.as_dict())
            return
        while True:
            result = relay_pending(
                sessions, now=clock.now(), channels=channels, config=config, limit=batch
            )
            if result.claimed:
                echo(result.as_dict())
            if result.claimed < batch:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@notify_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="pending | sent | failed | skipped")] = None,
    loan: Annotated[int | None, typer.Option("--loan", help="one loan's messages")] = None,
    before_id: Annotated[int | None, typer.Option(help="page back from this id")] = None,
    limit: Annotated[int, typer.Option(help="at most this many (1-1000)")] = 50,
) -> None:
    """Outbox messages, newest first (no parameters: some hold one-time codes)."""
    from mobilend.notify.outbox import list_messages, message_json

    echo(
        run(
            lambda s: [
                message_json(m)
                for m in list_messages(
                    s, status=status, loan_id=loan, before_id=before_id, limit=limit
                )
            ]
        )
    )
