"""Channel adapters: how a rendered message leaves Mobilend (SMS, push, e-mail).

A `Channel` has one method, `send(message) -> reference`: it delivers one `Outgoing` message
or raises. `ChannelError` means "try again later" (the relay retries with backoff);
`RejectedByChannel` means retrying cannot help (a refused address): the message fails at once.
The returned reference (the provider's message id) is kept on the outbox row.

Adapters here:
- `FileChannel` (development, the default for every channel): appends one JSON line per
  message to `<directory>/<channel>.jsonl`. The lines hold the full recipient and text, so the
  files are personal data (created 0600); never point it at a shared directory in production.
- `SmtpChannel`: e-mail through an SMTP server (stdlib smtplib), optional STARTTLS or implicit
  TLS and login; the body is UTF-8 text, so Chinese survives.

A real SMS or push provider is a class with `send` that raises these two errors, plus one
entry in `ADAPTERS` (docs/notifications.md, "Adding a provider").
"""

from __future__ import annotations

import fcntl
import json
import os
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mobilend.core.errors import ValidationFailed

if TYPE_CHECKING:
    from mobilend.settings import Settings

CHANNELS = ("sms", "push", "email")


class ChannelError(Exception):
    """The channel could not deliver now (network, provider busy): try again later."""


class RejectedByChannel(ChannelError):
    """The channel refused the message for good (bad address, content refused): do not retry."""


@dataclass(frozen=True, repr=False)
class Outgoing:
    """One rendered message for one recipient. `to` is personal data: never log it."""

    message_id: int  # the outbox row
    channel: str
    topic: str
    language: str
    to: str  # E.164 phone (sms), the app's user id (push) or an e-mail address
    subject: str
    body: str
    at: datetime  # when the relay sends it

    def __repr__(self) -> str:
        return f"Outgoing(message_id={self.message_id}, channel={self.channel!r})"


class Channel(Protocol):
    def send(self, message: Outgoing) -> str:
        """Deliver `message`; return the provider's reference. Raises ChannelError."""
        ...


class FileChannel:
    """Development adapter: one JSON line per message in `<directory>/<name>.jsonl`.

    Several relays may append at once: each line is written under an exclusive file lock.
    The reference is `<file name>@<byte offset of the line>`.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"{name}.jsonl"

    def send(self, message: Outgoing) -> str:
        line = json.dumps(
            {
                "id": message.message_id,
                "channel": message.channel,
                "topic": message.topic,
                "language": message.language,
                "to": message.to,
                "subject": message.subject,
                "body": message.body,
                "at": message.at.isoformat(),
            },
            ensure_ascii=False,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                offset = fh.seek(0, os.SEEK_END)
                fh.write(line + "\n")
                fh.flush()
        except OSError as exc:
            raise ChannelError(f"cannot write {self.path.name}: {exc.strerror}") from exc
        return f"{self.path.name}@{offset}"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False
    sender: str = "Mobilend <noreply@localhost>"
    timeout: float = 30.0

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r})"


class SmtpChannel:
    """E-mail through an SMTP server; one connection per message (the relay's volume of
    e-mail is small). 5xx answers and refused recipients are `RejectedByChannel`; anything
    else (network, 4xx, login) is a `ChannelError` to retry."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def build(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(message.at)
        email["Message-ID"] = make_msgid(idstring=f"outbox{message.message_id}")
        email.set_content(message.body)  # UTF-8, quoted-printable or base64 as needed
        return email

    def send(self, message: Outgoing) -> str:
        email = self.build(message)
        s = self.settings
        try:
            with self._connect() as smtp:
                if s.starttls and not s.implicit_tls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            raise RejectedByChannel(f"recipient refused: {_codes(exc.recipients)}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(f"SMTP login failed ({exc.smtp_code})") from exc
        except smtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise RejectedByChannel(detail) from exc
            raise ChannelError(detail) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"SMTP {s.host}:{s.port}: {exc}") from exc
        return str(email["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.implicit_tls:
            return smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(s.host, s.port, timeout=s.timeout)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _codes(refused: Mapping[str, tuple[int, bytes]]) -> str:
    # the address itself is personal data and stays out of last_error
    return ", ".join(f"{code} {_text(text)}" for code, text in refused.values())


# ---------------------------------------------------------------- configuration

AdapterFactory = Callable[["Settings", str], Channel]


def _file(settings: Settings, channel: str) -> Channel:
    return FileChannel(settings.notify_path, channel)


def _smtp(settings: Settings, channel: str) -> Channel:
    if channel != "email":
        raise ValidationFailed(
            f"notify_{channel}_adapter", "adapter-channel", "the smtp adapter sends e-mail only"
        )
    return SmtpChannel(
        SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_ssl,
            sender=settings.smtp_from,
            timeout=settings.smtp_timeout_seconds,
        )
    )


# Adapter name (MOBILEND_NOTIFY_<CHANNEL>_ADAPTER) -> factory. A provider adds its entry here.
ADAPTERS: dict[str, AdapterFactory] = {"file": _file, "smtp": _smtp}


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    """The adapter configured for each channel (sms, push, email)."""
    channels: dict[str, Channel] = {}
    for channel in CHANNELS:
        name = getattr(settings, f"notify_{channel}_adapter")
        factory = ADAPTERS.get(name)
        if factory is None:
            raise ValidationFailed(
                f"notify_{channel}_adapter",
                "known-adapter",
                f"unknown adapter {name!r} for {channel}; known: {', '.join(sorted(ADAPTERS))}",
            )
        channels[channel] = factory(settings, channel)
    return channels
