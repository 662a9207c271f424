"""Settings of the notifications service (12-factor, read from the environment)."""

import ipaddress
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator

from chassis.mailer import SmtpSettings
from chassis.settings import Environment, ServiceSettings
from services.notifications.schemas import time_zone_name


class NotificationsSettings(ServiceSettings, SmtpSettings):
    notifications_port: int = 8005
    # Web Push (VAPID, RFC 8292): the application server's P-256 private key, base64url (as
    # `npx web-push generate-vapid-keys` prints it) or PEM. Unset: in development a key derived
    # from VITRINE_SECRET_KEY, in production no Web Push at all.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = Field("mailto:live@vitrine.localhost", pattern=r"^(mailto:|https://)")
    # Push services the service will POST to (host suffixes, comma-separated): a subscription
    # naming any other host is refused, so nobody makes the service call where they please.
    push_allowed_hosts: str = (
        "fcm.googleapis.com,push.services.mozilla.com,notify.windows.com,push.apple.com"
    )
    push_timeout_s: float = Field(10.0, gt=0)
    push_ca_bundle: str | None = None  # a CA to trust for push services (tests' stand-in)
    # The address viewers reach the gateway at: links in e-mails and calendars point there.
    # Production refuses plain http and a loopback/localhost address (links nobody can open).
    public_url: str = "http://127.0.0.1:8000"
    # "Starts in N minutes" goes this long before a live's scheduled time, unless the live has
    # a lead time of its own.
    reminder_lead_minutes: int = Field(15, ge=1, le=7 * 24 * 60)
    # Confirmation e-mails (double opt-in) one address may be sent in a day, whoever asks.
    confirmations_per_address_per_day: int = Field(3, ge=1, le=100)
    reminder_default_language: Literal["fr", "en"] = "fr"
    # An IANA zone name, checked at start (a typo would fail every reminder's message instead).
    reminder_default_time_zone: Annotated[str, AfterValidator(time_zone_name)] = "Europe/Paris"
    # Messages handed to the SMTP server at once by one process; each waits at most the timeout.
    send_concurrency: int = Field(10, ge=1, le=500)
    # A failed message is tried again after this, doubled each time up to the maximum, until
    # it is this long past its time (then `failed`) or says nothing true any more ("starts in
    # 15 min" once the live has started). A refused address is given up at once.
    send_retry_base_s: float = Field(5.0, gt=0)
    send_retry_max_delay_s: float = Field(600.0, gt=0)
    send_give_up_after_s: float = Field(24 * 3600.0, gt=0)
    # A claimed message not sent by then (its process died) is taken up again by another.
    send_lease_s: float = Field(120.0, gt=0)
    dispatch_interval_s: float = Field(1.0, gt=0)
    # How long a live lasts in calendars (lives have no planned end).
    calendar_duration_minutes: int = Field(60, ge=1, le=24 * 60)
    calendar_name: str = Field("Vitrine lives", max_length=100)  # the feed's name in calendar apps

    @model_validator(mode="after")
    def _refuse_unusable_addresses_in_production(self) -> Self:
        if self.vitrine_env is not Environment.PRODUCTION:
            return self
        public = urlsplit(self.public_url)
        if public.scheme != "https" or not public.hostname or _is_local(public.hostname):
            raise ValueError(
                "PUBLIC_URL must be the https:// address viewers reach the gateway at "
                "(not http://, localhost or a loopback address)"
            )
        return self

    @property
    def push_hosts(self) -> list[str]:
        return [host.strip().lower() for host in self.push_allowed_hosts.split(",") if host.strip()]

    @property
    def push_enabled(self) -> bool:
        """Web Push needs a VAPID key; development derives one (see `vapid_private_key`)."""
        return self.vapid_private_key is not None or self.is_development


def _is_local(hostname: str) -> bool:
    name = hostname.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
