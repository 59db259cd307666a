"""The outbox relay and the reminder planner on SQLite and PostgreSQL.

Each test has a database of its own (`isolated_db_url`): the relay scans the whole outbox.
Loans are 1200 at 12% a year in 3 monthly installments from 2025-01-15, as worked out by hand
in tests/integration/test_loan_lifecycle.py: 408.03 due 2025-02-15, 408.03 due 2025-03-15,
408.02 due 2025-04-15. Times are Shanghai time (UTC+8, no daylight saving).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.db.session import unit_of_work
from mobilend.loans import service as loans
from mobilend.loans.models import Installment
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.notify.channels import CHANNELS, Channel, FileChannel
from mobilend.notify.models import OutboxMessage
from mobilend.notify.outbox import enqueue
from mobilend.notify.relay import (
    RelayConfig,
    RelayResult,
    claim,
    relay_pending,
    relay_until_idle,
)
from mobilend.servicing.policy import ReminderPlan, ServicingPolicy
from mobilend.servicing.reminders import plan_reminders
from mobilend.settings import Settings
from tests.integration.helpers import Db
from tests.integration.test_borrowers import CIPHER, INDEX, K1, person, register

pytestmark = pytest.mark.integration
D = Decimal
SH = ZoneInfo("Asia/Shanghai")
START = date(2025, 1, 15)
NIGHT = datetime(2025, 2, 12, 23, 30, tzinfo=SH)  # 15:30 UTC
MORNING = datetime(2025, 2, 13, 8, 5, tzinfo=SH)  # 00:05 UTC
EIGHT = datetime(2025, 2, 13, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
NOON = datetime(2025, 2, 13, 12, 0, tzinfo=SH)
CONFIG = RelayConfig(cipher=CIPHER)


class Book:
    """A database, the file adapters in tmp_path/notify, and helpers to book loans."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.db = Db(url)
        self.sessions = self.db.factory
        self.out = tmp_path / "notify"
        self.channels: dict[str, Channel] = {c: FileChannel(self.out, c) for c in CHANNELS}

    def product(self, plan: ReminderPlan | None = None) -> str:
        code = f"P{uuid.uuid4().hex[:10]}"
        policy = ServicingPolicy(reminders=plan or ReminderPlan())
        cfg = ProductConfig(servicing_policy=policy)
        self.db(lambda s: loans.create_product(s, ProductIn(code=code, name="x", config=cfg)))
        return code

    def borrower(self) -> tuple[int, str]:
        """A registered borrower and their 11-digit mobile number as entered."""
        data = person()
        return register(self.db, data), data.phone

    def loan(self, code: str, borrower_id: int | None = None, *, disburse: bool = True) -> int:
        ref = f"borrower:{borrower_id}/application:0" if borrower_id else ""
        body = LoanIn(
            product_code=code, principal=D("1200"), periods=3, start_date=START, borrower_ref=ref
        )
        loan_id = int(self.db(lambda s: loans.create_loan(s, body)).id)
        if disburse:
            self.db(lambda s: loans.disburse(s, loan_id=loan_id, value_date=START))
        return loan_id

    def pay(self, loan_id: int, amount: str, on: date) -> None:
        self.db(
            lambda s: loans.repay(
                s, loan_id=loan_id, amount=D(amount), value_date=on, business_date=on
            )
        )

    def plan(self, on: date, now: datetime, **kw: Any) -> int:
        return self.db(lambda s: plan_reminders(s, business_date=on, now=now, **kw))

    def notice(self, loan_id: int | None, now: datetime, **kw: Any) -> int:
        """A collateral notice enqueued as the collateral module does (next_attempt_at unset)."""
        fields: dict[str, Any] = {
            "topic": "collateral.margin_call_cured",
            "params": {"loan_id": loan_id, "ltv_pct": "45.00"},
            "dedupe_key": f"test:{uuid.uuid4().hex}",
        } | kw

        def add(s: Session) -> int:
            message = enqueue(s, loan_id=loan_id, business_date=now.date(), now=now, **fields)
            assert message is not None
            s.flush()
            return message.id

        return self.db(add)

    def relay(self, now: datetime, **kw: Any) -> RelayResult:
        options: dict[str, Any] = {"channels": self.channels, "config": CONFIG} | kw
        return relay_pending(self.sessions, now=now, **options)

    def lines(self, channel: str = "sms") -> list[dict[str, Any]]:
        path = self.out / f"{channel}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def messages(self) -> list[OutboxMessage]:
        return self.db(lambda s: list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))

    def message(self, message_id: int) -> OutboxMessage:
        found = self.db(lambda s: s.get(OutboxMessage, message_id))
        assert found is not None
        return found

    def installment_id(self, loan_id: int, number: int) -> int:
        query = select(Installment.id).where(
            Installment.loan_id == loan_id, Installment.number == number
        )
        return int(self.db(lambda s: s.execute(query).scalar_one()))


@pytest.fixture
def book(isolated_db_url: str, tmp_path: Path) -> Book:
    return Book(isolated_db_url, tmp_path)


def counts(result: RelayResult) -> dict[str, int]:
    return {k: v for k, v in result.as_dict().items() if v}


def masked(mobile: str) -> str:
    return f"{mobile[:3]}****{mobile[-4:]}"


# ---------------------------------------------------------------- the reminder plan


def test_reminders_are_planned_once_per_installment_and_date(book: Book) -> None:
    daily = book.product()  # before 3 and 1 days, on the day, after 1, 3, 7, 15, 30 (sms)
    narrow = book.product(
        ReminderPlan(before_due_days=[2], on_due=False, after_due_days=[3], channel="push")
    )
    a = book.loan(daily)
    book.loan(daily, disburse=False)  # approved, not active: never reminded
    c = book.loan(narrow)

    # 2025-02-12: A's installment 1 is due in 3 days; C's plan has nothing for that date
    assert book.plan(date(2025, 2, 12), NIGHT) == 1
    assert book.plan(date(2025, 2, 12), NIGHT) == 0  # the same date again: nothing new
    [m] = book.messages()
    assert (m.topic, m.channel, m.loan_id, m.language) == (
        "repayment.before_due",
        "sms",
        a,
        "zh-CN",
    )
    assert m.params == {
        "loan_id": a,
        "number": 1,
        "due_date": "2025-02-15",
        "days": 3,
        "amount": "408.03",
    }
    assert m.dedupe_key == f"reminder:{book.installment_id(a, 1)}:2025-02-15:before_due:3"
    assert (m.business_date, m.status, m.attempts, m.created_at) == (
        date(2025, 2, 12),
        "pending",
        0,
        NIGHT.astimezone(UTC),
    )
    assert m.next_attempt_at == EIGHT  # planned at 23:30: due from 08:00 Shanghai time

    # 2025-02-13: C's installment 1 is due in 2 days (push); A's plan skips 2 days ahead
    assert book.plan(date(2025, 2, 13), NOON) == 1
    latest = book.messages()[-1]
    assert (latest.loan_id, latest.channel, latest.params["days"]) == (c, "push", 2)
    assert latest.next_attempt_at == NOON.astimezone(UTC)  # daytime: due at once

    # A pays installment 1 on its due date; on 2025-02-18 only C is 3 days overdue
    book.pay(a, "408.03", date(2025, 2, 15))
    assert book.plan(date(2025, 2, 18), NOON + timedelta(days=5)) == 1
    latest = book.messages()[-1]
    assert (latest.topic, latest.loan_id, latest.params["amount"]) == (
        "repayment.overdue",
        c,
        "408.03",
    )

    # a partition of loan ids: A alone on 2025-03-12 (installment 2 due in 3 days)
    march = datetime(2025, 3, 12, 12, tzinfo=SH)
    assert book.plan(date(2025, 3, 12), march, lo=a + 1) == 0  # B and C: nothing that day
    assert book.plan(date(2025, 3, 12), march, lo=a, hi=a + 1) == 1
    assert book.plan(date(2025, 3, 12), march) == 0
    assert len(book.messages()) == 4


def test_a_partly_paid_installment_is_reminded_of_what_it_still_owes(book: Book) -> None:
    a = book.loan(book.product())
    # 100 on the due date: interest 12.00 accrued in full, then 88.00 of principal;
    # still owed 396.03 - 88.00 = 308.03
    book.pay(a, "100", date(2025, 2, 15))
    assert book.plan(date(2025, 2, 16), NOON) == 1
    [m] = book.messages()
    assert (m.topic, m.params["days"], m.params["amount"]) == ("repayment.overdue", 1, "308.03")


# ---------------------------------------------------------------- sending, quiet hours


def test_quiet_hours_hold_messages_until_eight(book: Book) -> None:
    borrower, mobile = book.borrower()
    a = book.loan(book.product(), borrower)
    notice = book.notice(a, NIGHT)
    assert book.plan(date(2025, 2, 12), NIGHT) == 1

    # 23:30: the notice is due (no next_attempt_at) but held; the reminder is not due yet
    assert counts(book.relay(NIGHT)) == {"claimed": 1, "deferred": 1}
    assert book.lines() == []
    held = book.message(notice)
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, EIGHT)
    assert counts(book.relay(datetime(2025, 2, 13, 7, 59, tzinfo=SH))) == {}

    # 08:05: both go; the reminder now says 2 days (it is 2025-02-13 in Shanghai)
    assert counts(book.relay(MORNING)) == {"claimed": 2, "sent": 2}
    first, second = book.lines()
    assert first["to"] == second["to"] == "+86" + mobile
    assert first["body"] == f"您的贷款 {a} 质押率已恢复至 45.00%，补仓通知已解除。"
    assert second["body"] == (
        f"【Mobilend】您的贷款 {a} 第 1 期应还 408.03 元，将于 2025-02-15 到期（还有 2 天）。"
        "请按时还款，如有疑问请致电 400-000-0000。"
    )
    assert second["subject"] == "Mobilend: 还款提醒"
    assert first["at"] == MORNING.isoformat()
    for m in book.messages():
        assert (m.status, m.attempts, m.sent_at) == ("sent", 1, MORNING.astimezone(UTC))
        assert m.recipient_hint == masked(mobile)
    assert [m.channel_ref for m in book.messages()] == [
        "sms.jsonl@0",
        f"sms.jsonl@{len(json.dumps(first, ensure_ascii=False).encode()) + 1}",
    ]
    assert counts(book.relay(MORNING + timedelta(minutes=1))) == {}  # nothing sent twice
    assert len(book.lines()) == 2


def test_a_signing_code_is_sent_at_once_even_at_night(book: Book) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    params = {"lender": "Mobilend", "contract_no": "MLC-00000001", "amount": "1200.00"}
    book.notice(
        a,
        NIGHT,
        topic="contract.signing_code",
        params=params | {"code": "123456", "minutes": 10},
        language="en",
    )
    assert counts(book.relay(NIGHT)) == {"claimed": 1, "sent": 1}
    [line] = book.lines()
    assert line["body"] == (
        "Mobilend: your code to sign loan contract MLC-00000001 (loan amount CNY 1200.00) "
        "is 123456, valid for 10 minutes. Never share this code."
    )


def test_push_goes_to_the_app_user_and_undeliverable_messages_fail(book: Book) -> None:
    borrower, _ = book.borrower()
    code = book.product()
    a = book.loan(code, borrower)
    orphan = book.loan(code)  # no borrower named
    push = book.notice(a, NOON, channel="push")
    mail = book.notice(a, NOON, channel="email")
    nobody = book.notice(orphan, NOON)
    loose = book.notice(None, NOON, params={"loan_id": 0, "ltv_pct": "1"})
    assert counts(book.relay(NOON)) == {"claimed": 4, "sent": 1, "failed": 3}
    [line] = book.lines("push")
    assert line["to"] == f"borrower:{borrower}"
    assert book.message(push).recipient_hint == f"borrower:{borrower}"
    assert book.message(mail).last_error == (
        f"no-recipient: borrower {borrower} has no e-mail address"
    )
    assert book.message(nobody).last_error == f"no-recipient: loan {orphan} names no borrower"
    assert book.message(loose).last_error == (
        "no-recipient: the message names no loan, so no borrower"
    )
    assert {book.message(i).status for i in (mail, nobody, loose)} == {"failed"}
    assert book.lines("sms") == [] and book.lines("email") == []


def test_a_reminder_paid_before_its_turn_is_skipped(book: Book) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    due_day = datetime(2025, 2, 15, 9, tzinfo=SH)
    assert book.plan(date(2025, 2, 15), due_day) == 1  # due today
    book.pay(a, "408.03", date(2025, 2, 15))
    assert counts(book.relay(due_day + timedelta(minutes=5))) == {"claimed": 1, "skipped": 1}
    [m] = book.messages()
    assert (m.status, m.last_error, m.sent_at) == ("skipped", "reminder no longer needed", None)
    assert book.lines() == []


# ---------------------------------------------------------------- retries, crashes, two relays


def test_retries_with_backoff_then_failure_with_the_error_kept(book: Book, tmp_path: Path) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    blocker = tmp_path / "blocker"
    blocker.write_text("")  # a file where the adapter wants a directory: every write fails
    broken: dict[str, Channel] = {"sms": FileChannel(blocker, "sms")}
    t0 = datetime(2025, 2, 13, 10, 0, tzinfo=SH)
    message = book.notice(a, t0)
    # attempt n fails; the next is 1, 4, 16, 64 minutes later: at t0 + 0, 1, 5, 21, 85 min
    for n, minutes in enumerate((0, 1, 5, 21), start=1):
        assert counts(book.relay(t0 + timedelta(minutes=minutes), channels=broken)) == {
            "claimed": 1,
            "retrying": 1,
        }
        m = book.message(message)
        assert (m.status, m.attempts) == ("pending", n)
        assert m.next_attempt_at == (t0 + timedelta(minutes=minutes + 4 ** (n - 1))).astimezone(UTC)
        assert m.last_error is not None and m.last_error.startswith(
            "ChannelError: cannot write sms.jsonl"
        )
        early = t0 + timedelta(minutes=minutes + 4 ** (n - 1), seconds=-1)
        assert counts(book.relay(early, channels=broken)) == {}
    assert counts(book.relay(t0 + timedelta(minutes=85), channels=broken)) == {
        "claimed": 1,
        "failed": 1,
    }
    m = book.message(message)
    assert (m.status, m.attempts) == ("failed", 5)
    assert m.last_error is not None and "cannot write sms.jsonl" in m.last_error
    assert counts(book.relay(t0 + timedelta(days=1))) == {}  # a failed message stays failed


def test_a_relay_that_dies_after_claiming_is_taken_over_after_the_lease(book: Book) -> None:
    """At least once: a claim whose relay died (here: never sent nor recorded) is sent by
    another relay when the 5-minute lease has run out."""
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    message = book.notice(a, NOON)
    assert book.db(lambda s: claim(s, now=NOON, limit=10, lease=timedelta(minutes=5))) == [
        (message, 1)
    ]
    assert counts(book.relay(NOON + timedelta(minutes=4, seconds=59))) == {}
    assert counts(book.relay(NOON + timedelta(minutes=5))) == {"claimed": 1, "sent": 1}
    m = book.message(message)
    assert (m.status, m.attempts) == ("sent", 2)
    assert len(book.lines()) == 1


def test_two_relays_at_once_send_each_message_once(book: Book) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    ids = {book.notice(a, NOON) for _ in range(60)}
    start = threading.Barrier(2)
    results: dict[str, list[RelayResult]] = {"one": [], "two": []}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            start.wait()
            while True:
                result = book.relay(NOON, limit=4)
                results[name].append(result)
                if result.claimed == 0:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    sent = [line["id"] for line in book.lines()]
    assert sorted(sent) == sorted(ids)  # each message exactly once
    assert sum(r.sent for rs in results.values() for r in rs) == 60
    assert sum(r.lost for rs in results.values() for r in rs) == 0
    assert {(m.status, m.attempts) for m in book.messages()} == {("sent", 1)}


def test_relay_until_idle_drains_everything_due_in_passes(book: Book) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    for _ in range(10):
        book.notice(a, NOON)
    calls: list[datetime] = []

    def clock() -> datetime:
        calls.append(NOON + timedelta(seconds=len(calls)))
        return calls[-1]

    total = relay_until_idle(
        book.sessions, clock=clock, channels=book.channels, config=CONFIG, limit=3
    )
    # passes of 3, 3, 3, 1, each at its own clock reading; the fourth claimed fewer than 3
    assert counts(total) == {"claimed": 10, "sent": 10}
    assert calls == [NOON + timedelta(seconds=n) for n in range(4)]
    assert [line["at"] for line in book.lines()] == [
        (NOON + timedelta(seconds=n // 3)).isoformat() for n in range(10)
    ]


def test_claims_skip_rows_another_relay_holds_on_postgresql(
    isolated_pg_url: str, tmp_path: Path
) -> None:
    book = Book(isolated_pg_url, tmp_path)
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    ids = [book.notice(a, NOON) for _ in range(6)]
    first: Session = book.sessions()
    try:
        held = claim(first, now=NOON, limit=3, lease=timedelta(minutes=5))  # not committed
        with unit_of_work(book.sessions) as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail
            other = claim(second, now=NOON, limit=10, lease=timedelta(minutes=5))
        assert [i for i, _ in held] == ids[:3]
        assert [i for i, _ in other] == ids[3:]
    finally:
        first.rollback()
        first.close()
    # the first relay's claim rolled back: its rows are due again, the others are leased
    again = book.db(lambda s: claim(s, now=NOON, limit=10, lease=timedelta(minutes=5)))
    assert [i for i, _ in again] == ids[:3]


# ---------------------------------------------------------------- CLI and HTTP


def daytime_zone() -> str:
    """A fixed-offset zone where it is now about noon, so the CLI's real clock never meets
    quiet hours (Etc/GMT-N is UTC+N)."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def test_cli_relays_once_and_lists(book: Book, tmp_path: Path) -> None:
    borrower, mobile = book.borrower()
    a = book.loan(book.product(), borrower)
    now = datetime.now(UTC)
    message = book.notice(a, now)
    env = os.environ | {
        "MOBILEND_DATABASE_URL": book.url,
        "MOBILEND_DATA_DIR": str(tmp_path / "cli"),
        "MOBILEND_PII_KEYS": json.dumps({"k1": base64.b64encode(K1).decode()}),
        "MOBILEND_PII_INDEX_KEY": base64.b64encode(INDEX).decode(),
        "MOBILEND_BORROWER_TIMEZONE": daytime_zone(),
    }

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "mobilend.cli", "notify", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert cli("list", "--status", "pending") == [
        {
            "id": message,
            "topic": "collateral.margin_call_cured",
            "channel": "sms",
            "loan_id": a,
            "language": "zh-CN",
            "business_date": now.date().isoformat(),
            "status": "pending",
            "attempts": 0,
            "created_at": now.isoformat(),
            "next_attempt_at": None,
            "sent_at": None,
            "recipient": None,
            "channel_ref": None,
            "last_error": None,
        }
    ]
    assert cli("relay", "--once", "--limit", "10") == {
        "claimed": 1,
        "sent": 1,
        "deferred": 0,
        "retrying": 0,
        "failed": 0,
        "skipped": 0,
        "lost": 0,
    }
    [listed] = cli("list", "--status", "sent", "--loan", str(a))
    assert (listed["id"], listed["recipient"], listed["channel_ref"]) == (
        message,
        masked(mobile),
        "sms.jsonl@0",
    )
    lines = (tmp_path / "cli" / "notify" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["to"] == "+86" + mobile
    assert cli("list", "--status", "pending") == []
    bad = subprocess.run(
        [sys.executable, "-m", "mobilend.cli", "notify", "list", "--status", "lost"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert json.loads(bad.stderr)["error"]["field"] == "status"


def test_notifications_over_http(book: Book, tmp_path: Path) -> None:
    borrower, _ = book.borrower()
    a = book.loan(book.product(), borrower)
    params = {"lender": "Mobilend", "contract_no": "MLC-1", "amount": "1", "minutes": 10}
    code = book.notice(a, NOON, topic="contract.signing_code", params=params | {"code": "987654"})
    other = book.notice(a, NOON)
    book.relay(NOON)
    app = create_app(Settings(database_url=book.url, log_schedule=False, data_dir=tmp_path))
    with unit_of_work(app.state.sessions) as s:
        _, token = create_credential(s, name="viewer", role="viewer")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/v1/notifications").status_code == 401
        r = client.get("/v1/notifications", headers=auth)
        assert r.status_code == 200
        assert [m["id"] for m in r.json()] == [other, code]  # newest first
        assert "987654" not in r.text and "params" not in r.json()[0]
        page = client.get(f"/v1/notifications?before_id={other}&loan_id={a}", headers=auth)
        assert [m["id"] for m in page.json()] == [code]
        assert client.get("/v1/notifications?status=failed", headers=auth).json() == []
        bad = client.get("/v1/notifications?status=nope", headers=auth)
        assert bad.status_code == 422 and bad.json()["field"] == "status"
    app.state.engine.dispose()
