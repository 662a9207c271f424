"""Settings every service shares (12-factor: read from the environment)."""

import math
import ssl
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chassis.bus import DEAD_LETTER_MAX_BYTES

INSECURE_JWT_SECRET = "vitrine-dev-jwt-secret-change-me-0123456789"  # noqa: S105
INSECURE_SECRET_KEY = "vitrine-dev-secret-key-change-me-0123456789"  # noqa: S105
INSECURE_PREFIX = (
    "vitrine-dev-"  # the development defaults (docker-compose.yml), refused in production
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class BusSettings(BaseSettings):
    """What a tool needs to reach the bus and its event stream (`vitrine dead-letters`), and
    nothing else: no secret of the services'."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"  # a cluster's servers may be comma-separated
    jetstream_stream: str = Field("LIVE", pattern=r"^[A-Za-z0-9_-]+$")
    # Each process's own credentials (deploy/nats/auth.conf): a user and password, or a .creds
    # file (JWT and nkey seed); TLS with the servers' CA and, for mutual TLS, a client cert.
    nats_user: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")
    nats_password: SecretStr | None = None
    nats_creds: str | None = None
    nats_tls_ca: str | None = None
    nats_tls_cert: str | None = None
    nats_tls_key: str | None = None

    def nats_options(self) -> dict[str, Any]:
        """The options of `nats.connect` these settings ask for. A user's replies come to an
        inbox of its own (`_INBOX_<user>.`), the only subjects it may subscribe to."""
        options: dict[str, Any] = {}
        if self.nats_user:
            options["user"] = self.nats_user
            options["inbox_prefix"] = f"_INBOX_{self.nats_user}".encode()
        if self.nats_password is not None:
            options["password"] = self.nats_password.get_secret_value()
        if self.nats_creds:
            options["user_credentials"] = self.nats_creds
        if self.nats_tls_ca or self.nats_tls_cert:
            tls = ssl.create_default_context(cafile=self.nats_tls_ca)
            if self.nats_tls_cert:
                tls.load_cert_chain(self.nats_tls_cert, self.nats_tls_key)
            options["tls"] = tls
        return options


class ServiceSettings(BusSettings):
    """What a Vitrine process needs to reach its database, the bus, Redis and verify tokens."""

    vitrine_env: Environment = Environment.DEVELOPMENT
    # One JSON object per line (chassis/logs.py); unset: JSON in production, text elsewhere.
    log_format: Literal["json", "text"] | None = None
    database_url: str = "postgresql://postgres@127.0.0.1:5432/vitrine"
    redis_url: str = "redis://127.0.0.1:6379/0"

    jwt_secret: SecretStr = SecretStr(INSECURE_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_role_claim: str = "app_metadata.role"
    vitrine_secret_key: SecretStr = SecretStr(INSECURE_SECRET_KEY)

    # Isolation: a deployment (or a test run) may use its own stream (JETSTREAM_STREAM),
    # subjects and keys.
    subject_root: str = Field("live", pattern=r"^[A-Za-z0-9_.-]+$")
    redis_prefix: str = "vitrine:"
    # Copies of the event stream JetStream keeps: 3 where a 3-node NATS cluster runs (unset:
    # a new stream gets 1, an existing one is left as it is).
    jetstream_replicas: int | None = Field(None, ge=1, le=5)
    db_schema_prefix: str = Field("", pattern=r"^[a-z0-9_]*$")

    max_body_bytes: int = 1_000_000

    # Connections one process may hold: every process of every service together must stay
    # within PostgreSQL's max_connections (see the README's formula).
    db_pool_size: int = Field(5, ge=1)
    db_max_overflow: int = Field(5, ge=0)
    db_pool_timeout_s: float = Field(10.0, gt=0)  # waiting for a free connection, then 503
    db_connect_timeout_s: float = Field(5.0, gt=0)  # for a new connection, then 503

    # For how long NATS, or Redis, may be away before /readyz answers 503 (inf: never). A
    # service serves its requests without them (outbox, fail-open limits), so by default only
    # a missing database makes it not ready; see chassis.health and the README.
    readiness_nats_outage_bound_s: float = Field(math.inf, ge=0)
    readiness_redis_outage_bound_s: float = Field(math.inf, ge=0)

    # A failing event comes back after each of these delays in turn (the last repeats), at most
    # CONSUMER_MAX_DELIVER deliveries, then it is parked as a dead letter (chassis.consumer).
    consumer_retry_delays_s: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        (1.0, 5.0, 30.0, 120.0, 600.0), min_length=1
    )
    consumer_max_deliver: int = Field(10, ge=1)
    # The dead-letter stream's size bound; past it the oldest dead letters go first.
    dead_letter_max_bytes: int = Field(DEAD_LETTER_MAX_BYTES, ge=1024 * 1024)

    @property
    def is_development(self) -> bool:
        return self.vitrine_env is not Environment.PRODUCTION

    @model_validator(mode="after")
    def _refuse_insecure_defaults_in_production(self) -> Self:
        if self.vitrine_env is Environment.PRODUCTION:
            for name, value, default in (
                ("JWT_SECRET", self.jwt_secret, INSECURE_JWT_SECRET),
                ("VITRINE_SECRET_KEY", self.vitrine_secret_key, INSECURE_SECRET_KEY),
            ):
                secret = value.get_secret_value()
                if secret == default or len(secret) < 32:
                    raise ValueError(f"{name} must be set to a random value of 32+ characters")
        return self

    def bus_options(self) -> dict[str, Any]:
        """The options a service connects to the bus with. In production it must be its own
        user with a real password (or a .creds file): never an open bus, nor the examples'."""
        if self.vitrine_env is Environment.PRODUCTION and not self.nats_creds:
            password = self.nats_password.get_secret_value() if self.nats_password else ""
            if not self.nats_user or len(password) < 24 or password.startswith(INSECURE_PREFIX):
                raise ValueError(
                    "NATS_USER and NATS_PASSWORD (24+ random characters), or NATS_CREDS, must "
                    "be set: the bus is never open in production"
                )
        return self.nats_options()

    @property
    def logs_as(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.vitrine_env is Environment.PRODUCTION else "text"

    def schema_for(self, service: str) -> str:
        """The PostgreSQL schema a service owns (a test run may prefix it)."""
        return f"{self.db_schema_prefix}{service}"

    def durable_name(self, name: str) -> str:
        """A durable consumer's name, prefixed like the schemas: deployments that share a
        JetStream stream but not a database schema never take each other's events."""
        return f"{self.db_schema_prefix}{name}"
