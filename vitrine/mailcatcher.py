"""A local SMTP server that keeps what it is sent instead of delivering it (aiosmtpd).

`make dev` runs one where SMTP_URL points (by default smtp://127.0.0.1:1025) and writes each
message as an .eml file a mail client opens; the tests run one to read what the notifications
service sent, through a real SMTP conversation.
"""

import email
import email.policy
import threading
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# Given the envelope, an SMTP reply to refuse it with ("451 4.3.0 try later"), or None.
Refusal = Callable[[Envelope], str | None]


class _Keeper:
    def __init__(self, catcher: "MailCatcher") -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.catcher.refuse is not None and (refusal := self.catcher.refuse(envelope)):
            return refusal
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        self.catcher.keep(data, recipients=list(envelope.rcpt_tos))
        return "250 2.0.0 kept"


class MailCatcher:
    """Messages received, parsed; written as .eml files into `directory` when one is given."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1025,
        directory: Path | None = None,
        refuse: Refusal | None = None,
        **smtp_options: Any,
    ) -> None:
        self.host, self.port, self.directory, self.refuse = host, port, directory, refuse
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.lock = threading.Lock()
        self.controller = Controller(_Keeper(self), hostname=host, port=port, **smtp_options)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def keep(self, data: bytes, *, recipients: list[str]) -> None:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.recipients.append(recipients)
            number = len(self.messages)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{number:05d}.eml").write_bytes(data)

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to `address`, in the order they came."""
        with self.lock:
            return [m for m, rcpt in zip(self.messages, self.recipients, strict=True)
                    if address in rcpt]  # fmt: skip

    def start(self) -> "MailCatcher":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
