"""E-mail over SMTP with aiosmtplib, configured by one URL (reminders; webhook endpoint alerts).

`smtp://user:password@host:587` uses STARTTLS when the server offers it, `smtp+starttls://`
requires it, `smtps://host:465` speaks TLS from the first byte. A failure is either permanent
(the server refused the address for good, 5xx) or worth another attempt later.
"""

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, Self
from urllib.parse import unquote, urlsplit

import aiosmtplib
from pydantic import BaseModel, Field, model_validator

SCHEMES = {"smtp": None, "smtp+starttls": True, "smtps": False}
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpSettings(BaseModel):
    """The settings of a service that sends mail, the same in each (a mixin of its settings
    class, beside chassis.settings.ServiceSettings)."""

    # Where the e-mails go out: smtp://[user:password@]host[:port] (STARTTLS when the server
    # offers it), smtp+starttls:// (STARTTLS required) or smtps:// (TLS from the first byte).
    # The default is the catcher `make dev` runs.
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_from: str = "Vitrine <live@vitrine.localhost>"
    smtp_timeout_s: float = Field(15.0, gt=0)
    # A CA bundle to trust for the SMTP server's certificate (a private relay); else the system's.
    smtp_ca_bundle: str | None = None

    @model_validator(mode="after")
    def _no_credentials_in_the_clear_in_production(self) -> Self:
        if str(getattr(self, "vitrine_env", "")) == "production":
            refuse_clear_credentials(self.smtp_url)
        return self


def refuse_clear_credentials(url: str) -> None:
    """Production's rule: a password is never sent where TLS is only used when offered."""
    parts = urlsplit(url)
    if parts.scheme == "smtp" and (parts.username or parts.password):
        raise ValueError(
            "SMTP_URL carries credentials over smtp:// (STARTTLS only when offered): "
            "use smtp+starttls:// or smtps://"
        )


class SendFailed(Exception):
    """Not sent; `permanent`: trying again would not help. The text never holds an address."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    start_tls: bool | None  # None: when offered

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://, smtp+starttls:// or smtps://host[:port]")
        return cls(
            hostname=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=parts.scheme == "smtps",
            start_tls=SCHEMES[parts.scheme],
        )


class SmtpMailer:
    """Connections kept open between messages (up to `keep` idle ones), so a burst of reminders
    does not pay a TCP, TLS and login handshake each. A connection that fails is dropped, never
    reused; one the server closed while idle is replaced once, before anything was sent on it."""

    def __init__(
        self, server: SmtpServer, *, timeout_s: float, ca_bundle: str | None = None, keep: int = 10
    ) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle
        self.keep = keep
        self.idle: list[aiosmtplib.SMTP] = []

    def _client(self) -> aiosmtplib.SMTP:
        server = self.server
        return aiosmtplib.SMTP(
            hostname=server.hostname,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.start_tls,
            timeout=self.timeout_s,
            cert_bundle=self.ca_bundle,
        )

    async def send(self, message: EmailMessage) -> None:
        client = self.idle.pop() if self.idle else None
        if client is not None and not await _sent(client, message, fresh=False):
            client = None  # the server closed it while idle: a fresh one
        if client is None:
            client = self._client()
            await _sent(client, message, fresh=True)
        if len(self.idle) < self.keep:
            self.idle.append(client)
        else:
            await _drop(client, politely=True)

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for client in idle:
            await _drop(client, politely=True)


async def _sent(client: aiosmtplib.SMTP, message: EmailMessage, *, fresh: bool) -> bool:
    """Send on `client` (connecting it first when `fresh`); False if a kept connection turned
    out closed before the message went. Any failure drops the connection."""
    try:
        if fresh:
            await client.connect()
        await client.send_message(message)
        return True
    except aiosmtplib.SMTPServerDisconnected as error:
        client.close()
        if not fresh:
            return False
        raise _as_failure(error) from None
    except asyncio.CancelledError:
        client.close()
        raise
    except Exception as error:
        await _drop(client)
        raise _as_failure(error) from None


async def _drop(client: aiosmtplib.SMTP, *, politely: bool = False) -> None:
    """Close a connection (QUIT first when it is in good order), whatever state it is in."""
    try:
        if politely and client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()


def _as_failure(error: Exception) -> SendFailed:
    """What went wrong, said without the address, and whether trying again could help."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        return SendFailed(
            f"recipient refused ({', '.join(map(str, codes))})",
            permanent=all(500 <= code < 600 for code in codes),
        )
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):  # ours to fix: worth trying again
        return SendFailed(f"SMTP authentication refused ({error.code})", permanent=False)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendFailed(f"SMTP {error.code}", permanent=500 <= error.code < 600)
    return SendFailed(type(error).__name__, permanent=False)
