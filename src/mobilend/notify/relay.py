"""The relay: sends what is due in the outbox through the channel adapters.

One pass (`relay_pending`):
1. Claim up to `limit` pending messages that are due (`next_attempt_at` unset or <= now) in
   one short transaction: each claimed row's `attempts` goes up by one and its
   `next_attempt_at` moves to now + lease, so no other relay picks it up meanwhile. On
   PostgreSQL the scan is `FOR UPDATE SKIP LOCKED`: relays running at once claim disjoint rows
   without waiting; on SQLite every transaction is `BEGIN IMMEDIATE`, so claims serialize.
2. For each claimed message, in its own short transaction: resolve the recipient (decrypting
   the phone number now, not at enqueueing), hold it back in the borrower's quiet hours
   (22:00-08:00 local: `next_attempt_at` becomes 08:00 local and the attempt is not counted),
   skip a repayment reminder the borrower no longer needs, render the text in the message's
   language.
3. Send through the adapter with no transaction open, then record the outcome: `sent` (with
   the provider's reference and the masked recipient), a retry at now + backoff, or `failed`
   with the error kept (at once for an undeliverable message or a refusal, else after
   `max_attempts` attempts).

Delivery is at least once. A relay that dies after the adapter accepted a message but before
step 3 committed leaves the row claimed; when the lease runs out another relay sends it again.
A relay slower than the lease could race with the next one: the outcome is recorded only if
the row is still the claim this relay made (same attempt count), and a pass should be short
(`limit` small enough to send within the lease).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mobilend.core.errors import MobilendError
from mobilend.db.session import is_postgres, unit_of_work
from mobilend.notify.channels import Channel, ChannelError, Outgoing, RejectedByChannel
from mobilend.notify.models import OutboxMessage
from mobilend.notify.quiet import send_from
from mobilend.notify.recipients import Recipient, Undeliverable, resolve
from mobilend.notify.templates import render, subject
from mobilend.origination.pii import PiiCipher, PiiError

if TYPE_CHECKING:
    from mobilend.settings import Settings

MAX_BACKOFF = timedelta(hours=6)
ERROR_MAX = 500  # characters of an error kept on the row
# A one-time signing code the borrower asked for this minute is sent at once, even at night:
# it expires in minutes, and the borrower's own request is their consent to be contacted now.
QUIET_HOURS_EXEMPT = frozenset({"contract.signing_code"})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayConfig:
    cipher: PiiCipher
    borrower_timezone: str = "Asia/Shanghai"
    max_attempts: int = 5
    retry_after: timedelta = timedelta(minutes=1)  # first retry; x4 for each one after
    lease: timedelta = timedelta(minutes=5)
    lender_name: str = "Mobilend"
    support_phone: str = "400-000-0000"

    @classmethod
    def from_settings(cls, settings: Settings, *, cipher: PiiCipher | None = None) -> RelayConfig:
        from mobilend.origination.service import cipher_from_settings

        return cls(
            cipher=cipher or cipher_from_settings(settings),
            borrower_timezone=settings.borrower_timezone,
            max_attempts=settings.notify_max_attempts,
            retry_after=timedelta(seconds=settings.notify_retry_seconds),
            lease=timedelta(seconds=settings.notify_lease_seconds),
            lender_name=settings.lender_name,
            support_phone=settings.support_phone,
        )


@dataclass
class RelayResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0  # quiet hours
    retrying: int = 0
    failed: int = 0
    skipped: int = 0  # reminders no longer needed
    lost: int = 0  # the claim had passed to another relay (lease ran out)
    errors: dict[int, str] = field(default_factory=dict)  # message id -> error of this pass

    def add(self, other: RelayResult) -> None:
        for name in ("claimed", "sent", "deferred", "retrying", "failed", "skipped", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors |= other.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "deferred": self.deferred,
            "retrying": self.retrying,
            "failed": self.failed,
            "skipped": self.skipped,
            "lost": self.lost,
        }


def retry_delay(attempts: int, first: timedelta) -> timedelta:
    """Backoff after the `attempts`-th failed attempt: first, 4x, 16x ... at most 6 hours."""
    delay: timedelta = first * 4 ** max(attempts - 1, 0)
    return min(delay, MAX_BACKOFF)


def relay_pending(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    channels: Mapping[str, Channel],
    config: RelayConfig,
    limit: int = 100,
) -> RelayResult:
    """One pass over the outbox: claim up to `limit` due messages and send each one."""
    with unit_of_work(sessions) as session:
        claims = claim(session, now=now, limit=limit, lease=config.lease)
    result = RelayResult(claimed=len(claims))
    for message_id, attempts in claims:
        try:
            _relay_one(sessions, message_id, attempts, now, channels, config, result)
        except Exception as exc:  # a bug or a database error on one message: go on with the rest
            log.exception("relay: message %s: unexpected error", message_id)
            error = f"unexpected {type(exc).__name__}: {exc}"
            with unit_of_work(sessions) as session:
                message = _mine(session, message_id, attempts)
                if message is None:  # another relay holds it now: its outcome is theirs
                    result.lost += 1
                    continue
                _retry_or_fail(message, error, now, config, result, final=False)
    return result


def relay_until_idle(
    sessions: sessionmaker[Session],
    *,
    clock: Callable[[], datetime],
    channels: Mapping[str, Channel],
    config: RelayConfig,
    limit: int = 100,
    max_passes: int = 10_000,
) -> RelayResult:
    """Passes of `relay_pending` (each at `clock()`) until one claims fewer than `limit`:
    everything due is handled. It ends: a claimed message is not due again within a pass."""
    total = RelayResult()
    for _ in range(max_passes):
        result = relay_pending(sessions, now=clock(), channels=channels, config=config, limit=limit)
        total.add(result)
        if result.claimed < limit:
            break
    return total


def claim(
    session: Session, *, now: datetime, limit: int, lease: timedelta
) -> list[tuple[int, int]]:
    """Claim due messages for one relay: [(id, attempts after this claim)], oldest first."""
    due = (
        select(OutboxMessage.id, OutboxMessage.attempts)
        .where(
            OutboxMessage.status == "pending",
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    rows = [(int(i), int(a) + 1) for i, a in session.execute(due)]
    if rows:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([i for i, _ in rows]))
            .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
    return rows


def _relay_one(
    sessions: sessionmaker[Session],
    message_id: int,
    attempts: int,
    now: datetime,
    channels: Mapping[str, Channel],
    config: RelayConfig,
    result: RelayResult,
) -> None:
    with unit_of_work(sessions) as session:
        message = _mine(session, message_id, attempts)
        if message is None:
            result.lost += 1
            return
        try:
            prepared = _prepare(session, message, now, channels, config)
        except Undeliverable as exc:
            _fail(message, f"{exc.rule}: {exc.detail}", result)
            return
        except (MobilendError, KeyError, ValueError) as exc:  # a template, parameter or zone
            _fail(message, f"prepare: {exc}", result)
            return
        except PiiError as exc:  # keys misconfigured: retry, in case they are put right
            _retry_or_fail(message, f"PiiError: {exc}", now, config, result, final=False)
            return
        if isinstance(prepared, str):
            if prepared == "skipped":
                message.status, message.last_error = "skipped", "reminder no longer needed"
                result.skipped += 1
            else:
                result.deferred += 1
            return
    outgoing, recipient = prepared
    try:
        reference = channels[message.channel].send(outgoing)
    except ChannelError as exc:
        with unit_of_work(sessions) as session:
            message = _mine(session, message_id, attempts)
            if message is None:
                result.lost += 1
                return
            final = isinstance(exc, RejectedByChannel)
            _retry_or_fail(message, f"{type(exc).__name__}: {exc}", now, config, result, final)
        return
    with unit_of_work(sessions) as session:
        message = _mine(session, message_id, attempts)
        if message is None:  # sent, but another relay re-claimed it after the lease
            log.warning("relay: message %s sent after its lease ran out", message_id)
            result.lost += 1
            return
        message.status, message.sent_at = "sent", now
        message.channel_ref, message.recipient_hint = reference[:120], recipient.hint[:64]
        result.sent += 1


def _mine(session: Session, message_id: int, attempts: int) -> OutboxMessage | None:
    """The message if this relay's claim still holds (pending, the attempt count it set)."""
    query = select(OutboxMessage).where(OutboxMessage.id == message_id)
    if is_postgres(session):
        query = query.with_for_update()
    message = session.scalar(query)
    if message is None or message.status != "pending" or message.attempts != attempts:
        return None
    return message


def _prepare(
    session: Session,
    message: OutboxMessage,
    now: datetime,
    channels: Mapping[str, Channel],
    config: RelayConfig,
) -> tuple[Outgoing, Recipient] | str:
    """The message ready to send, or "deferred" (quiet hours) / "skipped" (not needed)."""
    if message.channel not in channels:
        raise Undeliverable("unknown-channel", f"no adapter for channel {message.channel!r}")
    recipient = resolve(
        session, loan_id=message.loan_id, channel=message.channel, cipher=config.cipher
    )
    zone = recipient.timezone or config.borrower_timezone
    if message.topic not in QUIET_HOURS_EXEMPT:
        allowed = send_from(now, timezone=zone, channel=message.channel)
        if allowed > now.astimezone(UTC):
            message.next_attempt_at = allowed
            message.attempts -= 1  # waiting for the morning is not an attempt
            return "deferred"
    params: dict[str, Any] = {
        "lender": config.lender_name,
        "support_phone": config.support_phone,
        **message.params,
    }
    if message.topic.startswith("repayment."):
        from mobilend.servicing.reminders import refresh, still_owed

        owed = still_owed(session, loan_id=int(params["loan_id"]), number=int(params["number"]))
        local_today = now.astimezone(ZoneInfo(zone)).date()
        refreshed = refresh(message.topic, params, today=local_today, owed=owed)
        if refreshed is None:
            return "skipped"
        params = refreshed
    body = render(message.topic, message.language, params)
    title = f"{config.lender_name}: {subject(message.topic, message.language)}"
    outgoing = Outgoing(
        message_id=message.id,
        channel=message.channel,
        topic=message.topic,
        language=message.language,
        to=recipient.address,
        subject=title,
        body=body,
        at=now,
    )
    return outgoing, recipient


def _fail(message: OutboxMessage, error: str, result: RelayResult) -> None:
    message.status, message.last_error = "failed", error[:ERROR_MAX]
    log.warning("relay: message %s failed: %s", message.id, error)  # errors hold no addresses
    result.failed += 1
    result.errors[message.id] = error


def _retry_or_fail(
    message: OutboxMessage,
    error: str,
    now: datetime,
    config: RelayConfig,
    result: RelayResult,
    final: bool,
) -> None:
    """Fail the message when `final` or out of attempts; else try again after the backoff."""
    if final or message.attempts >= config.max_attempts:
        _fail(message, error, result)
        return
    message.last_error = error[:ERROR_MAX]
    message.next_attempt_at = now + retry_delay(message.attempts, config.retry_after)
    result.retrying += 1
    result.errors[message.id] = error
