"""Device-lock controller, server side: provisioning, enrollment, check-ins, signed commands.

A device-lock pledge gets a `Device` row and a one-time provisioning token (`provision`). The
phone's agent enrolls with the token and its own Ed25519 public key (`enroll`), then checks in
with signed reports (`check_in`). Each check-in records the heartbeat (last seen, SIM, rooted
and tampered flags, state), takes the acknowledgements of earlier commands, evaluates the lock
policy (`apply_policy`, which calls the pure `lockpolicy.decide`) and answers with the commands
still open for the phone, each signed with the server's key (`server_key`). While the policy
wants the phone usable, the answer also carries a signed `set_offline_deadline`: only a signed
command may push the phone's offline self-lock later (docs/device-lock.md, "Server side").

Every lock, unlock, release and reminder is recorded as a `CollateralEvent` with who and why.
Functions take the business date (`on`) and the time (`now`); none reads a clock or commits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilend.collateral import catalog, commands, lockpolicy
from mobilend.collateral.device_keys import (
    data_dir_or_default,
    server_key,
    server_public_key,
)
from mobilend.collateral.device_messages import (
    DEFAULT_KEYS,
    MESSAGE_LANGUAGE,
    REASON_KEYS,
    render,
)
from mobilend.collateral.lockpolicy import Decision, DeviceLoanState, LockPolicy
from mobilend.collateral.models import (
    LIVE_PLEDGE,
    CollateralEvent,
    Device,
    DeviceCheckIn,
    DeviceCommand,
    MarginCall,
    Pledge,
)
from mobilend.collateral.pledges import record
from mobilend.collateral.service import terms_for
from mobilend.core.errors import Conflict, MobilendError, NotFound, ValidationFailed
from mobilend.core.money import ZERO
from mobilend.loans.models import Installment, Loan
from mobilend.settings import get_settings
from mobilend.trust import log as trust_log

PROVISIONING_TTL = timedelta(days=7)
CHECK_IN_EVERY_SECONDS = 6 * 3600
# A new signed offline deadline is issued only when it moves the current one by at least this
# much, so a phone checking in every few hours does not get a command each time.
DEADLINE_STEP = timedelta(hours=12)
OPERATOR_ACTIONS = ("lock", "unlock", "reminder")
OPERATOR_PREFIX = "operator: "  # reason prefix of commands an operator issued by hand
OPERATOR_REASON_MAX = 100
OPEN = ("pending", "delivered")  # sent or waiting to be sent, not yet acknowledged
EVENT_OF = {
    "lock": "device_lock",
    "unlock": "device_unlock",
    "release": "device_release",
    "reminder": "device_reminder",
}
# A new command makes the open commands of these actions moot (they are not sent any more).
SUPERSEDES: Mapping[str, frozenset[str]] = {
    "lock": frozenset({"lock", "unlock", "reminder", "set_offline_deadline"}),
    "unlock": frozenset({"lock", "unlock"}),
    "release": frozenset(commands.ACTIONS),
    "reminder": frozenset({"reminder"}),
    "set_offline_deadline": frozenset({"set_offline_deadline"}),
}
# The most important open action is the policy's `pending_action`.
PENDING_PRIORITY = ("release", "lock", "unlock", "reminder")
LOAN_STATUS_FOR_POLICY = {"approved": "active"}  # booked, not yet disbursed: nothing is due
PLEDGE_STATUS_FOR_POLICY = {"liquidated": "released"}  # sold: the buyer gets a free phone
ENROLL_FIELDS = frozenset({"provisioning_token", "public_key", "imeis", "sim_mcc_mnc"})


class DeviceUnauthorized(MobilendError):
    """The phone could not prove itself (unknown or expired provisioning token)."""

    type = "unauthorized"
    title = "Not authorized"
    status = 401


# -- provisioning and enrollment ---------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def provision(
    session: Session, *, pledge: Pledge, now: datetime, token_ttl: timedelta = PROVISIONING_TTL
) -> str:
    """Create the pledge's Device with a one-time token (only its hash is stored); return it.

    Provisioning again before the phone enrolls replaces the token (the old one stops working).
    """
    if pledge.custody_mode != "device_lock":
        raise Conflict(f"pledge {pledge.id} is not in device-lock mode", field="custody_mode")
    if pledge.status not in LIVE_PLEDGE:
        raise Conflict(f"pledge {pledge.id} is {pledge.status}", field="pledge_id")
    device = _device_of(session, pledge)
    if device is None:
        device = Device(
            id=str(uuid.uuid4()),
            pledge_id=pledge.id,
            status="provisioning",
            reported_state="unlocked",
            imeis=[],
            sim_changed=False,
            rooted=False,
            tampered=False,
        )
        session.add(device)
    elif device.status != "provisioning":
        raise Conflict(
            f"the phone of pledge {pledge.id} is already {device.status}",
            field="pledge_id",
            rule="already-enrolled",
        )
    token = secrets.token_urlsafe(32)
    device.token_hash = _hash_token(token)
    device.token_expires_at = now + token_ttl
    session.flush()
    return token


def enroll(
    session: Session, *, body: Any, on: date, now: datetime, data_dir: Path
) -> dict[str, Any]:
    """Bind a phone's public key to its pledge with the one-time token; answer the wire format."""
    token, public_key, imeis, sim = _enrollment_fields(body)
    device = session.scalar(
        select(Device)
        .where(Device.token_hash == _hash_token(token))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if device is None:
        raise DeviceUnauthorized(
            "unknown provisioning token", field="provisioning_token", rule="unknown-token"
        )
    if device.enrolled_at is not None or device.status != "provisioning":
        raise Conflict(
            "this provisioning token was already used",
            field="provisioning_token",
            rule="token-used",
        )
    if now >= device.token_expires_at:
        raise DeviceUnauthorized(
            "the provisioning token has expired", field="provisioning_token", rule="token-expired"
        )
    pledge = _pledge(session, device)
    if pledge.status not in LIVE_PLEDGE:
        raise Conflict(
            f"pledge {pledge.id} is {pledge.status}",
            field="provisioning_token",
            rule="pledge-closed",
        )
    commands.load_public_key(public_key)  # ValidationFailed("public_key", ...) when not Ed25519
    if pledge.imei not in imeis:
        raise ValidationFailed(
            "imeis", "pledged-imei", "the phone's IMEIs do not include the pledged IMEI"
        )
    policy = _policy(session, pledge)
    deadline = lockpolicy.offline_lock_at(now, policy)
    device.public_key = public_key
    device.enrolled_at = now
    device.status = "enrolled"
    device.imeis = imeis
    device.sim_mcc_mnc = sim
    device.last_seen_at = now
    device.offline_lock_at = deadline
    device.reported_state = "unlocked"
    record(session, pledge, "device_enrolled", on=on, now=now, actor=_device_actor(device),
           device_id=device.id, imeis=imeis, sim_mcc_mnc=sim, public_key=public_key)  # fmt: skip
    session.flush()
    server_public, key_id = server_public_key(data_dir)
    return {
        "device_id": device.id,
        "server_public_key": server_public,
        "server_key_id": key_id,
        "check_in_every_seconds": CHECK_IN_EVERY_SECONDS,
        "offline_lock_at": commands.format_utc(deadline),
    }


def _enrollment_fields(body: Any) -> tuple[str, str, list[str], str | None]:
    if not isinstance(body, Mapping):
        raise ValidationFailed("body", "object", "the enrollment is a JSON object")
    unknown = sorted(str(k) for k in set(body) - ENROLL_FIELDS)
    if unknown:
        raise ValidationFailed(unknown[0], "unknown-field", f"unknown field {unknown[0]!r}")
    for field in ("provisioning_token", "public_key", "imeis"):
        if field not in body:
            raise ValidationFailed(field, "required", f"{field} is required")
    token = body["provisioning_token"]
    if not isinstance(token, str) or not token or len(token) > 200:
        raise ValidationFailed("provisioning_token", "string", "provisioning_token is a string")
    raw_imeis = body["imeis"]
    if not isinstance(raw_imeis, list) or not 1 <= len(raw_imeis) <= commands.MAX_IMEIS:
        raise ValidationFailed(
            "imeis", "list", f"imeis is a list of 1 to {commands.MAX_IMEIS} IMEIs"
        )
    imeis = [catalog.validate_imei(v, field=f"imeis[{n}]") for n, v in enumerate(raw_imeis)]
    sim = body.get("sim_mcc_mnc")
    if sim is not None and not (
        isinstance(sim, str) and sim.isascii() and sim.isdigit() and len(sim) in (5, 6)
    ):
        raise ValidationFailed("sim_mcc_mnc", "mcc-mnc", "sim_mcc_mnc is 5-6 digits or null")
    public_key = body["public_key"]
    if not isinstance(public_key, str):
        raise ValidationFailed("public_key", "ed25519-format", "public_key is base64url text")
    return token, public_key, imeis, sim


# -- check-in ----------------------------------------------------------------------------


class _StoredNonces:
    """The device's accepted check-in nonces, looked up in the database one at a time."""

    def __init__(self, session: Session, device_id: str) -> None:
        self.session, self.device_id = session, device_id

    def __contains__(self, nonce: object) -> bool:
        found = self.session.scalar(
            select(DeviceCheckIn.id)
            .where(DeviceCheckIn.device_id == self.device_id, DeviceCheckIn.nonce == nonce)
            .limit(1)
        )
        return found is not None


def check_in(
    session: Session, *, device_id: str, envelope: Any, on: date, now: datetime, data_dir: Path
) -> dict[str, Any]:
    """Verify and record a signed check-in, take its acks, apply the policy, answer commands."""
    device = _lock_device(session, device_id)
    if device.public_key is None:
        raise Conflict(
            f"device {device_id} is not enrolled", field="device_id", rule="not-enrolled"
        )
    payload = commands.verify_check_in(
        commands.load_public_key(device.public_key),
        envelope,
        device_id=device.id,
        now=now,
        seen_nonces=_StoredNonces(session, device.id),
    )
    _store_check_in(session, device, payload, now)
    pledge = _pledge(session, device)
    _take_acks(session, device, pledge, payload["acks"], on=on, now=now)
    _take_report(session, device, pledge, payload, on=on, now=now)
    _expire(session, device, pledge, on=on, now=now)
    if device.status == "released":
        session.flush()
        return {"server_time": commands.format_utc(now), "commands": [], "offline_lock_at": None}
    loan = _loan(session, pledge)
    decision = apply_policy(session, pledge=pledge, loan=loan, on=on, now=now, data_dir=data_dir)
    if device.status != "released" and decision.extend_offline_deadline:
        _extend_deadline(session, device, pledge, loan, on=on, now=now, data_dir=data_dir)
    envelopes = _deliver(session, device, now)
    deadline = (
        None if device.offline_lock_at is None else commands.format_utc(device.offline_lock_at)
    )
    return {
        "server_time": commands.format_utc(now),
        "commands": envelopes,
        "offline_lock_at": deadline,
    }


def _store_check_in(
    session: Session, device: Device, payload: dict[str, Any], now: datetime
) -> None:
    """Keep the check-in; the unique (device, nonce) refuses a replay even under a race."""
    try:
        with session.begin_nested():
            session.add(
                DeviceCheckIn(
                    device_id=device.id,
                    nonce=payload["nonce"],
                    sent_at=commands.parse_utc(payload["sent_at"], field="sent_at"),
                    received_at=now,
                    report=payload,
                )
            )
            session.flush()
    except IntegrityError as exc:
        raise commands.CommandRejected("replayed", "this nonce was seen before") from exc


def _take_acks(
    session: Session,
    device: Device,
    pledge: Pledge,
    acks: list[dict[str, Any]],
    *,
    on: date,
    now: datetime,
) -> None:
    """Record each ack once (by command id); a phone may send the same ack again."""
    actor = _device_actor(device)
    for ack in acks:
        row = session.get(DeviceCommand, ack["command_id"])
        if row is None or row.device_id != device.id:
            if ack["result"] == "rejected":  # e.g. a forged command someone slipped in
                record(session, pledge, "device_command_rejected", on=on, now=now, actor=actor,
                       device_id=device.id, command_id=ack["command_id"], action=None,
                       reason=ack["reason"], known=False)  # fmt: skip
            continue
        if row.acked_at is not None:
            continue
        row.status, row.acked_at, row.result_reason = ack["result"], now, ack["reason"]
        if row.status == "rejected":
            record(session, pledge, "device_command_rejected", on=on, now=now, actor=actor,
                   device_id=device.id, command_id=row.id, action=row.action,
                   reason=ack["reason"], known=True)  # fmt: skip
        elif row.action == "release":
            device.status = "released"
            record(session, pledge, "device_released", on=on, now=now, actor=actor,
                   device_id=device.id, command_id=row.id)  # fmt: skip


def _take_report(
    session: Session,
    device: Device,
    pledge: Pledge,
    payload: dict[str, Any],
    *,
    on: date,
    now: datetime,
) -> None:
    """Last seen, IMEIs, SIM change, integrity flags (sticky) and the reported state."""
    actor = _device_actor(device)

    def event(kind: str, **detail: Any) -> None:
        record(session, pledge, kind, on=on, now=now, actor=actor, device_id=device.id, **detail)

    device.last_seen_at = now
    if sorted(payload["imeis"]) != sorted(device.imeis or []):
        event("device_imeis_changed", before=list(device.imeis or []), after=payload["imeis"],
              pledged_imei_present=pledge.imei in payload["imeis"])  # fmt: skip
        device.imeis = list(payload["imeis"])
    sim = payload["sim_mcc_mnc"]
    if sim != device.sim_mcc_mnc:
        event("device_sim_changed", before=device.sim_mcc_mnc, after=sim)
        if device.sim_mcc_mnc is not None:  # a first SIM after none is not a change
            device.sim_changed = True
        device.sim_mcc_mnc = sim
    for flag in ("rooted", "tampered"):
        if payload[flag] and not getattr(device, flag):
            setattr(device, flag, True)
            event(f"device_{flag}", reported_at=payload["sent_at"])
    state = payload["state"]
    if state != device.reported_state:
        event("device_state_changed", before=device.reported_state, after=state)
        device.reported_state = state
        if state == "released" and device.status != "released":
            device.tampered = True  # the agent only releases on a signed release command
            event("device_tampered", reason="reported released without a release command")


def _expire(session: Session, device: Device, pledge: Pledge, *, on: date, now: datetime) -> None:
    """Open commands past their expiry expire. A delivered release that expired unacknowledged
    counts as done: the released phone has forgotten its key and can no longer report."""
    rows = session.scalars(
        select(DeviceCommand).where(
            DeviceCommand.device_id == device.id,
            DeviceCommand.status.in_(OPEN),
            DeviceCommand.expires_at <= now,
        )
    )
    for row in rows:
        row.status = "expired"
        delivered_release = row.action == "release" and row.delivered_at is not None
        if delivered_release and device.status != "released":
            device.status = "released"
            record(session, pledge, "device_released", on=on, now=now, actor="system",
                   device_id=device.id, command_id=row.id, assumed=True)  # fmt: skip


def _deliver(session: Session, device: Device, now: datetime) -> list[dict[str, Any]]:
    """Open, unexpired commands oldest first; sent again until acknowledged or expired."""
    rows = list(
        session.scalars(
            select(DeviceCommand)
            .where(
                DeviceCommand.device_id == device.id,
                DeviceCommand.status.in_(OPEN),
                DeviceCommand.expires_at > now,
            )
            .order_by(DeviceCommand.issued_at, DeviceCommand.id)
        )
    )
    for row in rows:
        if row.delivered_at is None:
            row.status, row.delivered_at = "delivered", now
    session.flush()
    return [dict(row.envelope) for row in rows]


def _extend_deadline(
    session: Session,
    device: Device,
    pledge: Pledge,
    loan: Loan,
    *,
    on: date,
    now: datetime,
    data_dir: Path,
) -> None:
    """Queue a signed set_offline_deadline when it moves the deadline by DEADLINE_STEP or more."""
    policy = terms_for(session, loan.product_id).lock_policy
    deadline = lockpolicy.offline_lock_at(now, policy)
    current = device.offline_lock_at
    if current is not None and deadline - current < DEADLINE_STEP:
        return
    _queue(session, device=device, pledge=pledge, action="set_offline_deadline",
           reason="offline-deadline", on=on, now=now, policy=policy, data_dir=data_dir,
           offline_lock_at=deadline)  # fmt: skip
    device.offline_lock_at = deadline


# -- commands ----------------------------------------------------------------------------


def command(
    session: Session,
    *,
    pledge: Pledge,
    action: str,
    reason: str,
    on: date,
    now: datetime,
    message: str | None = None,
    data_dir: Path | None = None,
    actor: str = "system",
    message_key: str | None = None,
    values: Mapping[str, object] | None = None,
    language: str = MESSAGE_LANGUAGE,
) -> DeviceCommand | None:
    """Queue a signed lock/unlock/reminder/release for the pledge's phone (audited).

    None when the pledge has no device or its phone is already released. A release for a phone
    that never enrolled just retires its provisioning token. Without `message`, the text comes
    from `message_key` (or the action and reason) in `language`.
    """
    if action not in EVENT_OF:
        raise ValidationFailed("action", "one-of", f"action must be one of {list(EVENT_OF)}")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("reason", "required", "say why the command is sent")
    device = _device_of(session, pledge, lock=True)
    if device is None or device.status == "released":
        return None
    if device.status == "provisioning" and action == "release":
        device.status = "released"
        record(session, pledge, EVENT_OF[action], on=on, now=now, actor=actor, reason=reason,
               device_id=device.id, command_id=None, never_enrolled=True)  # fmt: skip
        session.flush()
        return None
    loan = _loan(session, pledge)
    policy = terms_for(session, loan.product_id).lock_policy
    if message is None:
        key = message_key or REASON_KEYS.get((action, reason)) or DEFAULT_KEYS[action]
        message = render(key, _message_values(loan, on) | dict(values or {}), language)
    return _queue(session, device=device, pledge=pledge, action=action, reason=reason, on=on,
                  now=now, policy=policy, data_dir=data_dir_or_default(data_dir), message=message,
                  actor=actor)  # fmt: skip


def _queue(
    session: Session,
    *,
    device: Device,
    pledge: Pledge,
    action: str,
    reason: str,
    on: date,
    now: datetime,
    policy: LockPolicy,
    data_dir: Path,
    message: str | None = None,
    offline_lock_at: datetime | None = None,
    actor: str = "system",
) -> DeviceCommand:
    built = commands.new_command(
        device_id=device.id,
        action=action,
        now=now,
        ttl=policy.command_ttl,
        message=message,
        offline_lock_at=offline_lock_at,
        support_phone=get_settings().support_phone,
    )
    private_key, key_id = server_key(data_dir)
    envelope = commands.sign_command(private_key, built, key_id=key_id)
    for old in session.scalars(
        select(DeviceCommand).where(
            DeviceCommand.device_id == device.id,
            DeviceCommand.status.in_(OPEN),
            DeviceCommand.action.in_(SUPERSEDES[action]),
        )
    ):
        old.status = "superseded"
    row = DeviceCommand(
        id=built.command_id,
        device_id=device.id,
        action=action,
        reason=reason[:120],
        nonce=built.nonce,
        envelope=envelope,
        issued_at=built.issued_at,
        expires_at=built.expires_at,
        business_date=on,
        status="pending",
    )
    session.add(row)
    if action in ("lock", "unlock", "release"):  # the signed bytes' hash goes in the log
        signed = hashlib.sha256(
            commands.b64url_decode(envelope["payload"], field="payload")
        ).hexdigest()
        trust_log.record(session, kind="device_command", at=now, digest=signed,
                         refs={"command_id": row.id, "pledge_id": pledge.id})  # fmt: skip
    if action in EVENT_OF:
        record(session, pledge, EVENT_OF[action], on=on, now=now, actor=actor, reason=reason,
               device_id=device.id, command_id=row.id, message=message,
               expires_at=commands.format_utc(built.expires_at))  # fmt: skip
    session.flush()
    return row


def _message_values(loan: Loan, on: date) -> dict[str, object]:
    facts = loan_facts(loan, on)
    due = facts.oldest_unpaid or facts.next_due
    return {
        "lender": get_settings().lender_name,
        "support_phone": get_settings().support_phone,
        "due_date": "" if due is None else due.isoformat(),
        "days_past_due": 0 if facts.oldest_unpaid is None else (on - facts.oldest_unpaid).days,
    }


# -- the lock policy ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoanFacts:
    next_due: date | None  # earliest installment not fully paid, due on or after the day
    oldest_unpaid: date | None  # earliest installment due before the day with something owed


def _owed(i: Installment) -> Any:
    return (
        (i.principal - i.paid_principal)
        + (max(i.interest, i.interest_accrued) - i.paid_interest)
        + (max(i.fee, i.fee_charged) - i.paid_fee)
        + (i.penalty_charged - i.paid_penalty)
    )


def loan_facts(loan: Loan, on: date) -> LoanFacts:
    """What the policy needs from the schedule on `on` (an installment due on `on` is not late)."""
    unpaid = sorted(
        (i for i in loan.installments if not i.cancelled and _owed(i) > ZERO),
        key=lambda i: i.due_date,
    )
    oldest = next((i.due_date for i in unpaid if i.due_date < on), None)
    upcoming = next((i.due_date for i in unpaid if i.due_date >= on), None)
    return LoanFacts(next_due=upcoming, oldest_unpaid=oldest)


def apply_policy(
    session: Session,
    *,
    pledge: Pledge,
    loan: Loan,
    on: date,
    now: datetime,
    data_dir: Path | None = None,
    language: str = MESSAGE_LANGUAGE,
) -> Decision:
    """Decide what the pledge's phone needs today and queue it; deciding again adds nothing."""
    if pledge.custody_mode != "device_lock":
        return Decision(None, "not-device-lock")
    device = _device_of(session, pledge, lock=True)
    if device is None:
        return Decision(None, "no-device")
    if device.status == "released":
        return Decision(None, "device-released", None, "released")
    if device.status != "enrolled":
        return Decision(None, "not-enrolled")
    _expire(session, device, pledge, on=on, now=now)
    if device.status == "released":  # a delivered release just expired
        return Decision(None, "device-released", None, "released")
    facts = loan_facts(loan, on)
    state = DeviceLoanState(
        loan_status=LOAN_STATUS_FOR_POLICY.get(loan.status, loan.status),
        next_due_date=facts.next_due,
        oldest_unpaid_due_date=facts.oldest_unpaid,
        device_state=device.reported_state if device.reported_state != "released" else "unlocked",
        pledge_status=PLEDGE_STATUS_FOR_POLICY.get(pledge.status, pledge.status),
        last_reminder_date=session.scalar(
            select(func.max(DeviceCommand.business_date)).where(
                DeviceCommand.device_id == device.id, DeviceCommand.action == "reminder"
            )
        ),
        pending_action=_pending_action(session, device, now),
        collateral_short=_collateral_short(session, pledge),
    )
    policy = terms_for(session, loan.product_id).lock_policy
    decision = lockpolicy.decide(policy, state, today=on)
    held = _operator_hold(session, device, on) if decision.action in ("lock", "unlock") else None
    if held is not None:
        target = "locked" if held == "lock" else "unlocked"
        return Decision(None, "operator-hold", None, target, decision.days_past_due)
    if decision.action is not None:
        due = facts.oldest_unpaid if decision.action == "lock" else facts.next_due
        values: dict[str, object] = {"days_past_due": decision.days_past_due}
        if due is not None:
            values["due_date"] = due.isoformat()
        command(session, pledge=pledge, action=decision.action, reason=decision.reason, on=on,
                now=now, data_dir=data_dir, message_key=decision.message_key, values=values,
                language=language)  # fmt: skip
    return decision


def _collateral_short(session: Session, pledge: Pledge) -> bool:
    """The pledge's last margin call expired and its LTV is still in the margin-call zone."""
    if pledge.ltv_status not in ("margin_call", "liquidation"):
        return False
    last = session.scalar(
        select(MarginCall.status)
        .where(MarginCall.pledge_id == pledge.id)
        .order_by(MarginCall.id.desc())
        .limit(1)
    )
    return last == "expired"


def _pending_action(session: Session, device: Device, now: datetime) -> str | None:
    actions = set(
        session.scalars(
            select(DeviceCommand.action).where(
                DeviceCommand.device_id == device.id,
                DeviceCommand.status.in_(OPEN),
                DeviceCommand.expires_at > now,
            )
        )
    )
    return next((a for a in PENDING_PRIORITY if a in actions), None)


def _operator_hold(session: Session, device: Device, on: date) -> str | None:
    """An operator's lock or unlock holds for the rest of its business date: the policy does
    not undo it the same day. Returns that action, or None.

    The last lock or unlock is found by the audit trail's id (the order they were queued in;
    two commands issued in the same second have equal `issued_at`).
    """
    last = session.scalar(
        select(CollateralEvent)
        .where(
            CollateralEvent.pledge_id == device.pledge_id,
            CollateralEvent.kind.in_((EVENT_OF["lock"], EVENT_OF["unlock"])),
        )
        .order_by(CollateralEvent.id.desc())
        .limit(1)
    )
    if last is None or last.business_date != on:
        return None
    if not str(last.detail.get("reason", "")).startswith(OPERATOR_PREFIX):
        return None
    return "lock" if last.kind == EVENT_OF["lock"] else "unlock"


def run_policy(
    session: Session, *, on: date, now: datetime, data_dir: Path | None = None
) -> dict[str, int]:
    """Apply the policy to every enrolled device-lock phone not yet released (daily close)."""
    counts = {"devices": 0, "lock": 0, "unlock": 0, "reminder": 0, "release": 0, "none": 0}
    pledge_ids = list(
        session.scalars(
            select(Pledge.id)
            .join(Device, Device.pledge_id == Pledge.id)
            .where(Pledge.custody_mode == "device_lock", Device.status == "enrolled")
            .order_by(Pledge.id)
        )
    )
    for pledge_id in pledge_ids:
        pledge = session.get(Pledge, pledge_id)
        assert pledge is not None
        decision = apply_policy(
            session, pledge=pledge, loan=_loan(session, pledge), on=on, now=now, data_dir=data_dir
        )
        counts["devices"] += 1
        counts[decision.action or "none"] += 1
    return counts


# -- operators ---------------------------------------------------------------------------


def operator_command(
    session: Session,
    *,
    device_id: str,
    action: str,
    reason: str,
    actor: str,
    on: date,
    now: datetime,
    data_dir: Path,
    message: str | None = None,
) -> DeviceCommand:
    """A lock, unlock or reminder sent by hand; audited with the operator's name and reason."""
    if action not in OPERATOR_ACTIONS:
        raise ValidationFailed("action", "one-of", f"action must be one of {OPERATOR_ACTIONS}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("reason", "required", "say why the command is sent")
    if len(reason) > OPERATOR_REASON_MAX:
        raise ValidationFailed(
            "reason", "max-length", f"reason is at most {OPERATOR_REASON_MAX} characters"
        )
    device = _lock_device(session, device_id)
    if device.status == "released":
        raise Conflict(f"device {device_id} is released", field="device_id", rule="released")
    if _pending_action(session, device, now) == "release":
        raise Conflict(
            f"device {device_id} is being released", field="device_id", rule="release-pending"
        )
    row = command(session, pledge=_pledge(session, device), action=action,
                  reason=OPERATOR_PREFIX + reason, on=on, now=now, message=message,
                  data_dir=data_dir, actor=actor)  # fmt: skip
    assert row is not None
    return row


def device_status(session: Session, device_id: str) -> dict[str, Any]:
    """What an operator sees: heartbeat, SIM, integrity flags, state, deadline, open commands."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found", field="device_id")
    pledge = _pledge(session, device)
    open_rows = session.scalars(
        select(DeviceCommand)
        .where(DeviceCommand.device_id == device.id, DeviceCommand.status.in_(OPEN))
        .order_by(DeviceCommand.issued_at, DeviceCommand.id)
    )
    return {
        "device_id": device.id,
        "pledge_id": device.pledge_id,
        "loan_id": pledge.loan_id,
        "status": device.status,
        "state": device.reported_state,
        "enrolled_at": _utc(device.enrolled_at),
        "token_expires_at": _utc(device.token_expires_at)
        if device.status == "provisioning"
        else None,
        "last_seen_at": _utc(device.last_seen_at),
        "imeis": list(device.imeis or []),
        "sim_mcc_mnc": device.sim_mcc_mnc,
        "sim_changed": device.sim_changed,
        "rooted": device.rooted,
        "tampered": device.tampered,
        "offline_lock_at": _utc(device.offline_lock_at),
        "pending_commands": [command_json(row) for row in open_rows],
    }


def list_commands(session: Session, device_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The device's commands, newest first (the signed envelopes are not shown)."""
    if session.get(Device, device_id) is None:
        raise NotFound(f"device {device_id} not found", field="device_id")
    rows = session.scalars(
        select(DeviceCommand)
        .where(DeviceCommand.device_id == device_id)
        .order_by(DeviceCommand.issued_at.desc(), DeviceCommand.id.desc())
        .limit(limit)
    )
    return [command_json(row) for row in rows]


def command_json(row: DeviceCommand) -> dict[str, Any]:
    payload = _payload_of(row.envelope)
    return {
        "command_id": row.id,
        "action": row.action,
        "reason": row.reason,
        "status": row.status,
        "business_date": row.business_date.isoformat(),
        "issued_at": _utc(row.issued_at),
        "expires_at": _utc(row.expires_at),
        "delivered_at": _utc(row.delivered_at),
        "acked_at": _utc(row.acked_at),
        "result_reason": row.result_reason,
        "message": payload.get("message"),
        "offline_lock_at": payload.get("offline_lock_at"),
    }


# -- helpers -----------------------------------------------------------------------------


def _payload_of(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Our own stored envelope's payload (trusted: we signed it)."""
    text = str(envelope["payload"])
    data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return data if isinstance(data, dict) else {}


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else commands.format_utc(moment)


def _device_actor(device: Device) -> str:
    return f"device:{device.id}"


def _device_of(session: Session, pledge: Pledge, *, lock: bool = False) -> Device | None:
    stmt = select(Device).where(Device.pledge_id == pledge.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def _lock_device(session: Session, device_id: str) -> Device:
    device = session.scalar(
        select(Device)
        .where(Device.id == device_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if device is None:
        raise NotFound(f"device {device_id} not found", field="device_id")
    return device


def _pledge(session: Session, device: Device) -> Pledge:
    pledge = session.get(Pledge, device.pledge_id)
    assert pledge is not None
    return pledge


def _loan(session: Session, pledge: Pledge) -> Loan:
    loan = session.get(Loan, pledge.loan_id)
    assert loan is not None
    return loan


def _policy(session: Session, pledge: Pledge) -> LockPolicy:
    return terms_for(session, _loan(session, pledge).product_id).lock_policy
