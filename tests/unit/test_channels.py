"""Channel adapters: the file adapter's JSON lines, SMTP against a real local server (aiosmtpd),
configuration, quiet hours and the retry backoff."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from mobilend.core.errors import ValidationFailed
from mobilend.notify.channels import (
    ChannelError,
    FileChannel,
    Outgoing,
    RejectedByChannel,
    SmtpChannel,
    SmtpSettings,
    channels_from_settings,
)
from mobilend.notify.quiet import in_quiet_hours, send_from
from mobilend.notify.recipients import mask_email
from mobilend.notify.relay import retry_delay
from mobilend.notify.templates import subject
from mobilend.settings import Settings

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 2, 13, 8, 5, tzinfo=SH)
BODY = "【Mobilend】您的贷款 7 第 1 期应还 408.03 元，将于 2025-02-15 到期（还有 2 天）。"


def outgoing(n: int = 1, to: str = "+8613900000001", **over: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": n,
        "channel": "sms",
        "topic": "repayment.before_due",
        "language": "zh-CN",
        "to": to,
        "subject": "Mobilend: 还款提醒",
        "body": BODY,
        "at": AT,
    }
    return Outgoing(**(fields | over))


# ---------------------------------------------------------------- file adapter


def test_file_channel_appends_one_json_line_per_message(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path / "out", "sms")
    first = channel.send(outgoing(1))
    second = channel.send(outgoing(2, to="+8613900000002"))
    path = tmp_path / "out" / "sms.jsonl"
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == 2
    assert "还款提醒" in lines[0]  # stored as UTF-8 text, not \u escapes
    assert json.loads(lines[0]) == {
        "id": 1,
        "channel": "sms",
        "topic": "repayment.before_due",
        "language": "zh-CN",
        "to": "+8613900000001",
        "subject": "Mobilend: 还款提醒",
        "body": BODY,
        "at": "2025-02-13T08:05:00+08:00",
    }
    assert json.loads(lines[1])["to"] == "+8613900000002"
    # the reference is the byte offset of the line: 0, then the first line's length
    assert first == "sms.jsonl@0"
    assert second == f"sms.jsonl@{len(lines[0].encode()) + 1}"
    assert path.stat().st_mode & 0o777 == 0o600  # the lines are personal data


def test_file_channel_that_cannot_write_raises_a_retryable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ChannelError) as err:
        FileChannel(blocker, "sms").send(outgoing())
    assert not isinstance(err.value, RejectedByChannel)
    assert "sms.jsonl" in str(err.value) and "+86139" not in str(err.value)


def test_outgoing_repr_hides_the_recipient_and_text() -> None:
    assert repr(outgoing()) == "Outgoing(message_id=1, channel='sms')"


# ---------------------------------------------------------------- configuration


def test_channels_from_settings(tmp_path: Path) -> None:
    chosen = channels_from_settings(
        Settings(data_dir=tmp_path, notify_email_adapter="smtp", smtp_port=2525)
    )
    assert set(chosen) == {"sms", "push", "email"}
    sms = chosen["sms"]
    assert isinstance(sms, FileChannel) and sms.path == tmp_path / "notify" / "sms.jsonl"
    email = chosen["email"]
    assert isinstance(email, SmtpChannel)
    assert (email.settings.host, email.settings.port) == ("localhost", 2525)
    mine = channels_from_settings(Settings(data_dir=tmp_path, notify_dir=tmp_path / "msgs"))
    assert isinstance(mine["push"], FileChannel)
    assert mine["push"].path == tmp_path / "msgs" / "push.jsonl"


@pytest.mark.parametrize(
    ("over", "field", "rule"),
    [
        ({"notify_sms_adapter": "pigeon"}, "notify_sms_adapter", "known-adapter"),
        ({"notify_push_adapter": "smtp"}, "notify_push_adapter", "adapter-channel"),
    ],
)
def test_misconfigured_adapters(
    tmp_path: Path, over: dict[str, str], field: str, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        channels_from_settings(Settings(data_dir=tmp_path, **over))  # type: ignore[arg-type]
    assert (err.value.field, err.value.rule) == (field, rule)


def test_smtp_settings_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(SmtpSettings(password="s3cret"))


# ---------------------------------------------------------------- SMTP against aiosmtpd


class Inbox:
    """An aiosmtpd handler keeping what it receives; refuses recipients at refused.example."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_smtp_delivers_chinese_text(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=port, sender="Mobilend <noreply@mobilend.test>")
    )
    reference = channel.send(
        outgoing(42, to="zhang.san@example.com", channel="email", subject="Mobilend: 还款提醒")
    )
    assert len(inbox.messages) == 1
    rcpt, msg = inbox.messages[0]
    assert rcpt == ["zhang.san@example.com"]
    assert msg["To"] == "zhang.san@example.com"
    assert msg["From"] == "Mobilend <noreply@mobilend.test>"
    assert msg["Subject"] == "Mobilend: 还款提醒"
    assert msg.get_content().strip() == BODY
    assert msg["Message-ID"] == reference and "outbox42" in reference


def test_smtp_refused_recipient_is_final(smtp_server: tuple[Inbox, int]) -> None:
    _, port = smtp_server
    channel = SmtpChannel(SmtpSettings(host="127.0.0.1", port=port))
    with pytest.raises(RejectedByChannel) as err:
        channel.send(outgoing(to="nobody@refused.example", channel="email"))
    assert "550" in str(err.value) and "nobody" not in str(err.value)


def test_smtp_server_down_is_retryable() -> None:
    channel = SmtpChannel(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2))
    with pytest.raises(ChannelError) as err:
        channel.send(outgoing(to="a@example.com", channel="email"))
    assert not isinstance(err.value, RejectedByChannel)


# ---------------------------------------------------------------- quiet hours, backoff, texts


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        # 23:30 in Shanghai (UTC+8) waits for 08:00 the next morning, 00:00 UTC
        (datetime(2025, 2, 12, 23, 30, tzinfo=SH), datetime(2025, 2, 13, 0, 0, tzinfo=UTC)),
        (datetime(2025, 2, 13, 7, 59, tzinfo=SH), datetime(2025, 2, 13, 0, 0, tzinfo=UTC)),
        (datetime(2025, 2, 12, 22, 0, tzinfo=SH), datetime(2025, 2, 13, 0, 0, tzinfo=UTC)),
        # outside quiet hours: at once
        (datetime(2025, 2, 13, 8, 5, tzinfo=SH), datetime(2025, 2, 13, 0, 5, tzinfo=UTC)),
        (datetime(2025, 2, 12, 21, 59, tzinfo=SH), datetime(2025, 2, 12, 13, 59, tzinfo=UTC)),
    ],
)
def test_send_from_in_shanghai(local: datetime, expected: datetime) -> None:
    for channel in ("sms", "push", "email"):
        assert send_from(local, timezone="Asia/Shanghai", channel=channel) == expected
    assert in_quiet_hours(local, timezone="Asia/Shanghai", channel="sms") == (
        expected != local.astimezone(UTC)
    )


def test_send_from_over_a_daylight_saving_night() -> None:
    # New York springs forward on 2025-03-09: 23:00 EST (04:00 UTC) waits for 08:00 EDT
    at = datetime(2025, 3, 9, 4, 0, tzinfo=UTC)
    assert send_from(at, timezone="America/New_York", channel="sms") == datetime(
        2025, 3, 9, 12, 0, tzinfo=UTC
    )


def test_retry_delay_grows_fourfold_up_to_six_hours() -> None:
    minute = timedelta(minutes=1)
    assert [retry_delay(n, minute) for n in (1, 2, 3, 4, 5)] == [
        timedelta(minutes=1),
        timedelta(minutes=4),
        timedelta(minutes=16),
        timedelta(minutes=64),
        timedelta(minutes=256),
    ]
    assert retry_delay(6, minute) == timedelta(hours=6)  # 1024 minutes, capped


def test_subjects_and_masking() -> None:
    assert subject("repayment.overdue", "zh-CN") == "还款提醒"
    assert subject("collateral.margin_call", "en") == "About your pledged phone"
    assert subject("something.else", "en") == "Mobilend notice"
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_email("broken") == "***"
