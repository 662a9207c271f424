"""Settings of the webhooks service (12-factor, read from the environment)."""

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from chassis.mailer import SmtpSettings
from chassis.settings import Environment, ServiceSettings

# Standard Webhooks' (and Svix's) schedule after the first, immediate attempt: 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h — about 27 hours in all before a delivery is given up.
RETRY_DELAYS_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class WebhooksSettings(ServiceSettings, SmtpSettings):
    webhooks_port: int = 8006
    # A small pool: requests are few and short, and no connection is held while a receiver
    # answers (PostgreSQL's max_connections is shared by every process).
    db_pool_size: int = Field(3, ge=1)
    db_max_overflow: int = Field(2, ge=0)
    # A failed attempt is tried again after each of these delays in turn; after the last the
    # delivery is given up.
    webhooks_retry_delays_s: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        RETRY_DELAYS_S, min_length=1, max_length=20
    )
    # One attempt may take this long (connection and answer); past it, it failed.
    webhooks_attempt_timeout_s: float = Field(15.0, gt=0, le=120)
    # Attempts in flight at once, all endpoints together, per process.
    webhooks_concurrency: int = Field(20, ge=1, le=500)
    # ... of which one endpoint may hold this many (a hanging receiver starves no other).
    webhooks_concurrency_per_endpoint: int = Field(5, ge=1, le=500)
    # An endpoint is disabled after this many deliveries in a row given up, or once it has
    # failed every attempt for this long, whichever comes first.
    webhooks_disable_after_failures: int = Field(5, ge=1)
    webhooks_disable_after_s: float = Field(5 * 24 * 3600.0, gt=0)
    # Finished deliveries and their attempts older than this leave the delivery log.
    webhooks_log_retention_s: float = Field(30 * 24 * 3600.0, gt=0)
    # After a secret is rotated, deliveries are signed with the old one too for this long, so
    # the receiver can switch without losing one (Standard Webhooks' multiple signatures).
    webhooks_rotation_grace_s: float = Field(24 * 3600.0, ge=0)
    # Whether an endpoint may be at a loopback, private or link-local address. Unset: allowed
    # outside production (a receiver on the same machine), refused in production (SSRF).
    webhooks_allow_private_targets: bool | None = None
    # Told by e-mail when an endpoint is disabled (unset: the log, the metric and the
    # endpoint's own state only). Sent through SMTP_URL, from SMTP_FROM (chassis.mailer).
    webhooks_admin_email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    # How often the dispatcher looks for due deliveries when nothing woke it.
    webhooks_poll_interval_s: float = Field(1.0, gt=0)
    # A claimed delivery not finished by then (its process died) is taken up again.
    webhooks_lease_s: float = Field(120.0, gt=0)
    webhooks_max_endpoints: int = Field(100, ge=1, le=10_000)

    @field_validator("webhooks_admin_email", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # WEBHOOKS_ADMIN_EMAIL= in compose, k8s

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Self:
        if self.webhooks_lease_s <= self.webhooks_attempt_timeout_s:
            raise ValueError("WEBHOOKS_LEASE_S must be longer than WEBHOOKS_ATTEMPT_TIMEOUT_S")
        return self

    @property
    def private_targets_allowed(self) -> bool:
        if self.webhooks_allow_private_targets is not None:
            return self.webhooks_allow_private_targets
        return self.vitrine_env is not Environment.PRODUCTION
