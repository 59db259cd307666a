"""The device-lock controller's service against SQLite and PostgreSQL, with real signing.

The reference agent talks to the service functions through an in-process transport (each
call one unit of work, as a request would be). Dates and texts are worked out by hand in the
comments; nothing expected here comes from running the code under test.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.collateral import (
    catalog,
    commands,
    device_keys,
    device_messages,
    devices,
    lockpolicy,
    marking,
    pledges,
    prices,
)
from mobilend.collateral import service as collateral
from mobilend.collateral.agent import ENROLL_PATH, DeviceAgent
from mobilend.collateral.grading import Condition
from mobilend.collateral.models import CollateralEvent, Device, DeviceCheckIn, DeviceCommand
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.settings import get_settings
from tests.integration.helpers import Db

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2025, 1, 15)
T0 = datetime(2025, 1, 15, 12, tzinfo=SHANGHAI)  # = 2025-01-15T04:00:00Z
IPHONE_13_TAC = "35104463"  # in src/mobilend/collateral/data/catalog.csv


def with_check_digit(first14: str) -> str:
    """Append the Luhn check digit: double every second digit from the right of the 14."""
    total = 0
    for n, char in enumerate(reversed(first14)):
        digit = int(char)
        if n % 2 == 0:  # becomes an even position (from the right) once the check digit is added
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return first14 + str((10 - total % 10) % 10)


def test_luhn_helper_matches_a_hand_calculation() -> None:
    # 3 5 1 0 4 4 6 3 0 0 0 0 0 1: doubled (positions 2, 4, ... 14): 5->1 (10), 0, 4->8, 3->6,
    # 0, 0, 1->2 = 17; kept (1, 3, ... 13): 3+1+4+6+0+0+0 = 14; 31 -> check digit 9.
    assert with_check_digit("35104463000001") == "351044630000019"
    assert with_check_digit("49015420323751") == "490154203237518"  # the classic example IMEI


def new_imei() -> str:
    return with_check_digit(IPHONE_13_TAC + f"{secrets.randbelow(10**6):06d}")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings' data_dir (where the server key lives) is this test's temporary directory."""
    monkeypatch.setenv("MOBILEND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


class Pledged:
    """A disbursed 1000.00 loan (12% a year, 3 monthly installments from 2025-01-15, no penalty)
    with an iPhone 13 pledged in device-lock mode.

    Installment 1 falls due on 2025-02-15: 1000 * 0.01 / (1 - 1.01**-3) = 340.0221 -> 340.02,
    of which interest 1000 * 1% = 10.00 and principal 330.02.
    """

    def __init__(self, db: Db) -> None:
        code = f"D{uuid.uuid4().hex[:10]}"
        db(
            lambda s: loans.create_product(
                s, ProductIn(code=code, name="Phone loan", config=ProductConfig())
            )
        )
        body = LoanIn(product_code=code, principal=Decimal(1000), periods=3, start_date=START)
        self.loan_id: int = db(lambda s: loans.create_loan(s, body).id)
        db(lambda s: loans.disburse(s, loan_id=self.loan_id, value_date=START, business_date=START))
        self.imei = new_imei()

        def register(s: Session) -> tuple[int, str]:
            collateral.import_catalog(s, catalog.seed_catalog())
            done = pledges.register(
                s,
                loan_id=self.loan_id,
                imei=self.imei,
                storage_gb=128,
                condition=Condition("flawless", "flawless", 95),
                custody_mode="device_lock",
                business_date=START,
                now=T0,
            )
            assert done.provisioning_token is not None
            return done.pledge.id, done.provisioning_token

        self.pledge_id, self.token = db(register)


class Server:
    """The agent's transport: the service functions, each call in its own unit of work."""

    def __init__(self, db: Db, data_dir: Path) -> None:
        self.db, self.data_dir, self.now = db, data_dir, T0
        self.fail_next_check_in = False

    @property
    def today(self) -> date:
        return self.now.astimezone(SHANGHAI).date()

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        on, now = self.today, self.now
        if path == ENROLL_PATH:
            return self.db(
                lambda s: devices.enroll(s, body=body, on=on, now=now, data_dir=self.data_dir)
            )
        if self.fail_next_check_in:
            self.fail_next_check_in = False
            raise ConnectionError("network down")
        device_id = path.split("/")[3]
        return self.db(
            lambda s: devices.check_in(
                s, device_id=device_id, envelope=body, on=on, now=now, data_dir=self.data_dir
            )
        )


def _events(db: Db, pledge_id: int, *kinds: str) -> list[CollateralEvent]:
    return db(
        lambda s: list(
            s.scalars(
                select(CollateralEvent)
                .where(CollateralEvent.pledge_id == pledge_id, CollateralEvent.kind.in_(kinds))
                .order_by(CollateralEvent.id)
            )
        )
    )


def _device(db: Db, pledge_id: int) -> Device:
    return db(lambda s: s.scalars(select(Device).where(Device.pledge_id == pledge_id)).one())


def _enroll_body(token: str, imei: str, public_key: str) -> dict[str, Any]:
    return {
        "provisioning_token": token,
        "public_key": public_key,
        "imeis": [imei],
        "sim_mcc_mnc": "46000",
    }


# ---------------------------------------------------------------- the server key


def test_server_key_is_made_once_private_and_named_by_its_public_key(tmp_path: Path) -> None:
    key, key_id = devices.server_key(tmp_path)
    path = tmp_path / "device-signing-key.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32 and key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert devices.server_key(tmp_path) == (key, key_id)  # cached
    device_keys._KEYS.clear()  # a new process reads the same key back from the file
    again, again_id = devices.server_key(tmp_path)
    assert again_id == key_id
    assert (
        again.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        == raw
    )


def test_messages_exist_in_chinese_and_english_within_the_phone_limits() -> None:
    assert set(device_messages.MESSAGES["zh-CN"]) == set(device_messages.MESSAGES["en"])
    assert set(lockpolicy.MESSAGE_TEMPLATES) <= set(device_messages.MESSAGES["zh-CN"])
    values = {
        "lender": "Mobilend",
        "support_phone": "400-000-0000",
        "due_date": "2025-02-15",
        "days_past_due": 5,
    }
    for key in device_messages.MESSAGES["zh-CN"]:
        zh, en = (
            device_messages.render(key, values, "zh-CN"),
            device_messages.render(key, values, "en"),
        )
        limit = 350 if key.startswith("lock.") else 200
        assert 0 < len(zh) <= limit and 0 < len(en) <= limit, key
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), key  # Chinese characters
    assert device_messages.render("reminder.before_due", values) == (
        "Mobilend：您的还款将于 2025-02-15 到期，请在 App 内按时还款。"
    )
    with pytest.raises(ValidationFailed) as err:
        device_messages.render("reminder.before_due", values, "fr")
    assert err.value.field == "language"


# ---------------------------------------------------------------- enrollment


def test_enrollment_takes_the_one_time_token_once(db_url: str, data_dir: Path) -> None:
    db = Db(db_url)
    p = Pledged(db)
    _, public_key = commands.generate_keypair()

    def enroll(body: dict[str, Any], now: datetime = T0) -> dict[str, Any]:
        return db(lambda s: devices.enroll(s, body=body, on=START, now=now, data_dir=data_dir))

    with pytest.raises(devices.DeviceUnauthorized) as unknown:
        enroll(_enroll_body("not-a-token", p.imei, public_key))
    assert (unknown.value.field, unknown.value.rule) == ("provisioning_token", "unknown-token")
    other_phone = with_check_digit(p.imei[:8] + f"{(int(p.imei[8:14]) + 1) % 10**6:06d}")
    with pytest.raises(ValidationFailed) as wrong:
        enroll(_enroll_body(p.token, other_phone, public_key))
    assert (wrong.value.field, wrong.value.rule) == ("imeis", "pledged-imei")
    bad_check_digit = p.imei[:14] + str((int(p.imei[14]) + 1) % 10)
    with pytest.raises(ValidationFailed) as bad:
        enroll(_enroll_body(p.token, bad_check_digit, public_key))
    assert (bad.value.field, bad.value.rule) == ("imeis[0]", "imei-checksum")
    with pytest.raises(ValidationFailed) as bad_key:
        enroll(_enroll_body(p.token, p.imei, "not-a-key"))
    assert bad_key.value.field == "public_key"
    with pytest.raises(ValidationFailed) as extra:
        enroll(_enroll_body(p.token, p.imei, public_key) | {"pin": "1234"})
    assert (extra.value.field, extra.value.rule) == ("pin", "unknown-field")

    answer = enroll(_enroll_body(p.token, p.imei, public_key))
    device = _device(db, p.pledge_id)
    server_key, key_id = devices.server_key(data_dir)
    assert answer == {
        "device_id": device.id,
        "server_public_key": commands.public_key_b64(server_key),
        "server_key_id": key_id,
        "check_in_every_seconds": 6 * 3600,
        # enrolled 2025-01-15 12:00 in Shanghai = 04:00 UTC, plus offline_lock_days = 7
        "offline_lock_at": "2025-01-22T04:00:00Z",
    }
    assert (device.status, device.public_key, device.imeis) == ("enrolled", public_key, [p.imei])
    assert device.token_hash == hashlib.sha256(p.token.encode()).hexdigest()  # only the hash

    with pytest.raises(Conflict) as used:
        enroll(_enroll_body(p.token, p.imei, commands.generate_keypair()[1]))
    assert (used.value.field, used.value.rule) == ("provisioning_token", "token-used")
    assert _device(db, p.pledge_id).public_key == public_key  # the first enrollment stands
    [event] = _events(db, p.pledge_id, "device_enrolled")
    assert event.actor == f"device:{device.id}" and event.detail["imeis"] == [p.imei]


def test_an_expired_token_is_refused_and_a_new_one_replaces_it(db_url: str, data_dir: Path) -> None:
    db = Db(db_url)
    p = Pledged(db)
    _, public_key = commands.generate_keypair()
    # The token was issued at T0 for 7 days: still good one second before T0 + 7 days.
    expiry = T0 + timedelta(days=7)
    body = _enroll_body(p.token, p.imei, public_key)
    with pytest.raises(devices.DeviceUnauthorized) as late:
        db(lambda s: devices.enroll(s, body=body, on=START, now=expiry, data_dir=data_dir))
    assert (late.value.field, late.value.rule) == ("provisioning_token", "token-expired")

    def reprovision(s: Session) -> str:
        return devices.provision(s, pledge=pledges.get_pledge(s, p.pledge_id), now=expiry)

    token = db(reprovision)
    with pytest.raises(devices.DeviceUnauthorized) as old:
        db(lambda s: devices.enroll(s, body=body, on=START, now=expiry, data_dir=data_dir))
    assert old.value.rule == "unknown-token"
    fresh = _enroll_body(token, p.imei, public_key)
    answer = db(lambda s: devices.enroll(s, body=fresh, on=START, now=expiry, data_dir=data_dir))
    assert answer["offline_lock_at"] == "2025-01-29T04:00:00Z"  # 2025-01-22T04:00Z + 7 days
    with pytest.raises(Conflict):
        db(reprovision)  # an enrolled phone gets no new token


# ---------------------------------------------------------------- check-ins


def test_check_ins_are_verified_and_a_replay_is_refused(db_url: str, data_dir: Path) -> None:
    db = Db(db_url)
    p = Pledged(db)
    key, public_key = commands.generate_keypair()
    answer = db(
        lambda s: devices.enroll(
            s, body=_enroll_body(p.token, p.imei, public_key), on=START, now=T0, data_dir=data_dir
        )
    )
    device_id = answer["device_id"]

    def send(envelope: Any, now: datetime = T0) -> dict[str, Any]:
        return db(
            lambda s: devices.check_in(
                s, device_id=device_id, envelope=envelope, on=START, now=now, data_dir=data_dir
            )
        )

    def signed(sent: datetime = T0, signer: Any = key) -> dict[str, str]:
        payload = commands.new_check_in(
            device_id=device_id, now=sent, state="unlocked", imeis=[p.imei], sim_mcc_mnc="46000"
        )
        return commands.sign_check_in(signer, payload)

    envelope = signed()
    # Enrolled a moment ago: nothing is due (next due 2025-02-15, 31 days away) and the
    # deadline would move by 0 < 12 hours, so no command; the deadline is the enrollment one.
    assert send(envelope) == {
        "server_time": "2025-01-15T04:00:00Z",
        "commands": [],
        "offline_lock_at": "2025-01-22T04:00:00Z",
    }
    with pytest.raises(commands.CommandRejected) as replay:
        send(envelope)
    assert replay.value.reason == "replayed"
    with pytest.raises(commands.CommandRejected) as forged:
        send(signed(signer=commands.generate_keypair()[0]))
    assert forged.value.reason == "bad-signature"
    with pytest.raises(commands.CommandRejected) as stale:  # max_age is 10 minutes
        send(signed(sent=T0 - timedelta(minutes=10)))
    assert stale.value.reason == "expired"
    with pytest.raises(NotFound) as unknown:
        db(
            lambda s: devices.check_in(
                s, device_id="nope", envelope=envelope, on=START, now=T0, data_dir=data_dir
            )
        )
    assert unknown.value.field == "device_id"
    count = db(
        lambda s: s.scalar(
            select(func.count())
            .select_from(DeviceCheckIn)
            .where(DeviceCheckIn.device_id == device_id)
        )
    )
    assert count == 1
    assert _device(db, p.pledge_id).last_seen_at == T0


def test_a_month_of_daily_check_ins_reminds_then_locks_then_unlocks(
    db_url: str, data_dir: Path
) -> None:
    """Installment 1 is due 2025-02-15; the defaults remind 3 and 1 days before and on the day,
    and lock once days past due exceed 4. By hand, per daily check-in at 12:00 Shanghai:

      2025-02-12 (3 days before)  reminder        2025-02-17..19 (1-4 days late)  nothing
      2025-02-13 (2 days before)  nothing         2025-02-20 (5 days late)        lock
      2025-02-14 (1 day before)   reminder        2025-02-21 (locked, still late) nothing
      2025-02-15 (due today)      reminder        2025-02-16 (1 day late)         nothing

    While the phone should stay usable every check-in a day after the last one carries a signed
    set_offline_deadline (it moves the deadline by 24 hours >= 12); a locked phone gets none.
    """
    db = Db(db_url)
    p = Pledged(db)
    server = Server(db, data_dir)
    agent = DeviceAgent(server)
    agent.enroll(p.token, [p.imei], "46000", now=T0)
    assert [c.action for c in agent.check_in(now=T0, sim_mcc_mnc="46000")] == []

    obeyed: dict[date, list[str]] = {}
    day = START + timedelta(days=1)
    while day <= date(2025, 2, 21):
        server.now = datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI)
        assert not agent.tick(now=server.now)  # never offline long enough to lock itself
        done = agent.check_in(now=server.now, sim_mcc_mnc="46000")
        obeyed[day] = sorted(c.action for c in done)
        day += timedelta(days=1)

    deadline_only = ["set_offline_deadline"]
    for d in range(16, 32):  # every January day after enrollment
        assert obeyed[date(2025, 1, d)] == deadline_only
    for d in range(1, 12):
        assert obeyed[date(2025, 2, d)] == deadline_only
    assert obeyed[date(2025, 2, 12)] == ["reminder", "set_offline_deadline"]
    assert obeyed[date(2025, 2, 13)] == deadline_only
    assert obeyed[date(2025, 2, 14)] == ["reminder", "set_offline_deadline"]
    assert obeyed[date(2025, 2, 15)] == ["reminder", "set_offline_deadline"]
    for d in (16, 17, 18, 19):
        assert obeyed[date(2025, 2, d)] == deadline_only
    assert obeyed[date(2025, 2, 20)] == ["lock"]
    assert obeyed[date(2025, 2, 21)] == []
    assert agent.state == "locked"
    # The lock text (zh-CN): due 2025-02-15, 2025-02-20 is 5 days past due.
    assert agent.message == (
        "此手机已锁定：2025-02-15 到期的还款已逾期 5 天。在Mobilend App 内还款后立即解锁。"
        "紧急呼叫仍可使用。客服电话：400-000-0000"
    )
    # The last extension came with the 2025-02-19 check-in: 04:00 UTC + 7 days.
    assert agent.offline_lock_at == datetime.fromisoformat("2025-02-26T04:00:00+00:00")
    [lock] = _events(db, p.pledge_id, "device_lock")
    assert (lock.actor, lock.detail["reason"], lock.business_date) == (
        "system",
        "overdue-past-grace",
        date(2025, 2, 20),
    )
    assert len(_events(db, p.pledge_id, "device_reminder")) == 3

    # Deciding again the same day queues nothing new (the phone reports locked, nothing pending).
    def decide_again(s: Session) -> str:
        pledge = pledges.get_pledge(s, p.pledge_id)
        loan = loans.get_loan(s, p.loan_id)
        before = s.scalar(select(func.count()).select_from(DeviceCommand))
        first = devices.apply_policy(
            s, pledge=pledge, loan=loan, on=server.today, now=server.now, data_dir=data_dir
        )
        second = devices.apply_policy(
            s, pledge=pledge, loan=loan, on=server.today, now=server.now, data_dir=data_dir
        )
        assert s.scalar(select(func.count()).select_from(DeviceCommand)) == before
        return f"{first.reason}/{second.reason}"

    assert db(decide_again) == "overdue-stays-locked/overdue-stays-locked"

    # Paying installment 1 in full (340.02, no penalty on this product) makes the loan current:
    # the next decision unlocks at once.
    db(
        lambda s: loans.repay(
            s,
            loan_id=p.loan_id,
            amount=Decimal("340.02"),
            value_date=server.today,
            business_date=server.today,
        )
    )

    def decide(s: Session) -> str | None:
        decision = devices.apply_policy(
            s,
            pledge=pledges.get_pledge(s, p.pledge_id),
            loan=loans.get_loan(s, p.loan_id),
            on=server.today,
            now=server.now,
            data_dir=data_dir,
        )
        return decision.action

    db(decide)  # may find the unlock already queued by the repayment hook
    assert db(decide) is None
    assert sorted(c.action for c in agent.check_in(now=server.now, sim_mcc_mnc="46000")) == [
        "set_offline_deadline",
        "unlock",
    ]
    assert agent.state == "unlocked" and agent.allowed_apps() is None
    [unlock] = _events(db, p.pledge_id, "device_unlock")
    assert (unlock.actor, unlock.detail["reason"]) == ("system", "loan-current")
    assert _events(db, p.pledge_id, "device_sim_changed", "device_rooted") == []


def test_acks_count_once_and_forged_commands_are_reported(db_url: str, data_dir: Path) -> None:
    db = Db(db_url)
    p = Pledged(db)
    server = Server(db, data_dir)
    agent = DeviceAgent(server)
    agent.enroll(p.token, [p.imei], "46000", now=T0)
    device_id = agent.device_id
    assert device_id is not None
    row = db(
        lambda s: devices.operator_command(
            s,
            device_id=device_id,
            action="reminder",
            reason="called the borrower",
            actor="ops-alice",
            on=START,
            now=T0,
            data_dir=data_dir,
        )
    )
    assert [c.action for c in agent.check_in(now=T0)] == ["reminder"]
    assert agent.message == "Mobilend：请打开 App 查看您的借款。客服电话：400-000-0000"
    ack = {"command_id": row.id, "result": "done", "reason": None}
    forged_id = str(uuid.uuid4())
    bogus = {"command_id": forged_id, "result": "rejected", "reason": "bad-signature"}
    later = T0 + timedelta(minutes=1)
    for when in (later, later + timedelta(seconds=1)):  # the same ack twice
        assert agent.private_key is not None
        payload = commands.new_check_in(
            device_id=device_id,
            now=when,
            state="unlocked",
            imeis=[p.imei],
            sim_mcc_mnc="46000",
            acks=[ack, bogus],
        )
        envelope = commands.sign_check_in(agent.private_key, payload)
        db(
            lambda s, e=envelope, w=when: devices.check_in(
                s, device_id=device_id, envelope=e, on=START, now=w, data_dir=data_dir
            )
        )
    stored = db(lambda s: s.get(DeviceCommand, row.id))
    assert (stored.status, stored.acked_at) == ("done", later)
    rejected = _events(db, p.pledge_id, "device_command_rejected")
    assert rejected and all(e.detail["command_id"] == forged_id for e in rejected)
    assert rejected[0].detail["known"] is False and rejected[0].detail["reason"] == "bad-signature"
    [reminder] = _events(db, p.pledge_id, "device_reminder")
    assert (reminder.actor, reminder.detail["reason"]) == (
        "ops-alice",
        "operator: called the borrower",
    )


def test_an_operator_lock_holds_for_its_business_day(db_url: str, data_dir: Path) -> None:
    """The loan is current on 2025-02-01, so the policy would unlock a locked phone at once;
    an operator's lock holds until the day is over, then the policy decides again."""
    db = Db(db_url)
    p = Pledged(db)
    server = Server(db, data_dir)
    agent = DeviceAgent(server)
    agent.enroll(p.token, [p.imei], now=T0)
    device_id = agent.device_id
    assert device_id is not None
    server.now = datetime(2025, 2, 1, 9, tzinfo=SHANGHAI)
    with pytest.raises(ValidationFailed) as bad:
        db(
            lambda s: devices.operator_command(
                s,
                device_id=device_id,
                action="release",
                reason="x",
                actor="ops",
                on=server.today,
                now=server.now,
                data_dir=data_dir,
            )
        )
    assert bad.value.field == "action"
    db(
        lambda s: devices.operator_command(
            s,
            device_id=device_id,
            action="lock",
            reason="phone reported stolen",
            actor="ops-bob",
            on=server.today,
            now=server.now,
            data_dir=data_dir,
        )
    )
    assert "lock" in [c.action for c in agent.check_in(now=server.now)]
    server.now += timedelta(hours=1)
    assert [c.action for c in agent.check_in(now=server.now)] == []  # held: no unlock
    assert agent.state == "locked"
    server.now = datetime(2025, 2, 2, 9, tzinfo=SHANGHAI)
    assert sorted(c.action for c in agent.check_in(now=server.now)) == [
        "set_offline_deadline",
        "unlock",
    ]
    lock, unlock = _events(db, p.pledge_id, "device_lock", "device_unlock")
    assert (lock.kind, lock.actor, lock.detail["reason"]) == (
        "device_lock",
        "ops-bob",
        "operator: phone reported stolen",
    )
    assert (unlock.kind, unlock.actor, unlock.detail["reason"]) == (
        "device_unlock",
        "system",
        "loan-current",
    )


def test_a_release_whose_final_ack_is_lost_counts_once_it_expires(
    db_url: str, data_dir: Path
) -> None:
    db = Db(db_url)
    p = Pledged(db)
    server = Server(db, data_dir)
    agent = DeviceAgent(server)
    agent.enroll(p.token, [p.imei], now=T0)

    def release(s: Session) -> None:
        pledge = pledges.get_pledge(s, p.pledge_id)
        devices.command(
            s,
            pledge=pledge,
            action="release",
            reason="collateral substituted",
            on=START,
            now=T0,
            data_dir=data_dir,
            actor="ops-carol",
        )

    db(release)
    device_id = agent.device_id
    assert device_id is not None
    with pytest.raises(Conflict) as busy:  # no more commands once a release is on its way
        db(
            lambda s: devices.operator_command(
                s,
                device_id=device_id,
                action="lock",
                reason="x",
                actor="ops",
                on=START,
                now=T0,
                data_dir=data_dir,
            )
        )
    assert busy.value.rule == "release-pending"
    server.now = T0 + timedelta(minutes=5)
    agent.transport = _drop_after_first(server)
    assert [c.action for c in agent.check_in(now=server.now)] == ["release"]
    assert agent.state == "released" and agent.final_ack_sent is False
    assert agent.message == "Mobilend已解除对此手机的质押。谢谢！"
    assert _device(db, p.pledge_id).status == "enrolled"  # the server has not heard back

    def daily_close(s: Session, when: datetime) -> dict[str, int]:
        return devices.run_policy(
            s, on=when.astimezone(SHANGHAI).date(), now=when, data_dir=data_dir
        )

    # Issued 2025-01-15T04:00Z with a 72-hour life: still open at 2025-01-18T03:59:59Z ...
    db(lambda s: daily_close(s, T0 + timedelta(hours=72, seconds=-1)))
    assert _device(db, p.pledge_id).status == "enrolled"
    # ... and expired at 2025-01-18T04:00:00Z: treated as done.
    db(lambda s: daily_close(s, T0 + timedelta(hours=72)))
    assert _device(db, p.pledge_id).status == "released"
    [assumed] = _events(db, p.pledge_id, "device_released")
    assert assumed.detail["assumed"] is True
    [audit] = _events(db, p.pledge_id, "device_release")
    assert (audit.actor, audit.detail["reason"]) == ("ops-carol", "collateral substituted")


def _drop_after_first(server: Server) -> Any:
    """A network that delivers one check-in, then fails (the goodbye check-in is lost)."""
    calls = {"n": 0}

    def send(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ConnectionError("network down")
        return server(path, body)

    return send


def test_releasing_a_phone_that_never_enrolled_retires_its_token(
    db_url: str, data_dir: Path
) -> None:
    db = Db(db_url)
    p = Pledged(db)

    def release(s: Session) -> Any:
        pledge = pledges.get_pledge(s, p.pledge_id)
        return devices.command(
            s,
            pledge=pledge,
            action="release",
            reason="loan cancelled",
            on=START,
            now=T0,
            data_dir=data_dir,
        )

    assert db(release) is None
    body = _enroll_body(p.token, p.imei, commands.generate_keypair()[1])
    with pytest.raises(Conflict) as used:
        db(lambda s: devices.enroll(s, body=body, on=START, now=T0, data_dir=data_dir))
    assert used.value.field == "provisioning_token"
    [event] = _events(db, p.pledge_id, "device_release")
    assert event.detail["never_enrolled"] is True


def test_an_expired_margin_call_keeps_the_phone_locked_until_the_ltv_is_cured(
    isolated_db_url: str, data_dir: Path
) -> None:
    """The loan is current, but the phone's value falls: a quote of 1000.00 for a mint 128 GB
    iPhone 13 on 2025-01-20 makes LTV = 1000.00 / 1000.00 >= 1.00 (liquidation zone), so a
    margin call opens, due 7 days later (2025-01-27). Unanswered by 2025-01-28 it expires and
    the phone is locked; it stays locked on later check-ins although nothing is overdue. A
    prepayment of 500.00 on 2025-01-29 brings the LTV to about 0.5: the payment re-marks the
    pledge, and the next check-in unlocks the phone.
    """
    db = Db(isolated_db_url)
    p = Pledged(db)
    server = Server(db, data_dir)
    agent = DeviceAgent(server)
    agent.enroll(p.token, [p.imei], "46000", now=T0)
    quotes = [
        prices.PriceQuote("apple-iphone-13", 128, "mint", Decimal("1000.00"), date(2025, 1, 20), s)
        for s in ("a", "b", "c")
    ]
    db(lambda s: collateral.import_quotes(s, quotes, now=T0))

    def at(day: int) -> datetime:
        return datetime(2025, 1, day, 12, tzinfo=SHANGHAI)

    server.now = at(20)
    db(lambda s: marking.mark_all(s, on=date(2025, 1, 20), now=at(20)))
    assert agent.state == "unlocked"
    server.now = at(28)
    db(lambda s: marking.mark_all(s, on=date(2025, 1, 28), now=at(28)))
    agent.check_in(now=at(28), sim_mcc_mnc="46000")
    assert agent.state == "locked"
    server.now = at(29)
    agent.check_in(now=at(29), sim_mcc_mnc="46000")
    assert agent.state == "locked"  # current loan, but the collateral is still short
    db(
        lambda s: loans.prepay(
            s,
            loan_id=p.loan_id,
            value_date=date(2025, 1, 29),
            business_date=date(2025, 1, 29),
            amount=Decimal("500.00"),
            now=at(29),
        )
    )
    agent.check_in(now=at(29), sim_mcc_mnc="46000")
    assert agent.state == "unlocked"
    kinds = [
        e.kind
        for e in _events(
            db, p.pledge_id, "margin_call", "margin_call_expired", "device_lock", "device_unlock"
        )
    ]
    assert kinds == ["margin_call", "margin_call_expired", "device_lock", "device_unlock"]
