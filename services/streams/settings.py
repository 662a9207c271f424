"""Settings of the streams service (12-factor, read from the environment)."""

from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from chassis.settings import Environment, ServiceSettings

INSECURE_RTMP_CALLBACK_SECRET = "vitrine-dev-rtmp-callback-secret-change-me"  # noqa: S105


class StreamsSettings(ServiceSettings):
    streams_port: int = 8001
    # nginx-rtmp defaults (self-hosted); the admin settings may override them.
    rtmp_ingest_url: str = "rtmp://127.0.0.1:1935/live"
    hls_base_url: str = "http://127.0.0.1:8080/hls"
    # Where nginx serves its recordings (`record all`), named by playback id.
    replay_base_url: str = "http://127.0.0.1:8080/recordings"
    # nginx-rtmp's control module: ending a live drops its publisher there (never open to
    # viewers). Unset: /control beside the HLS, as deploy/nginx-rtmp/nginx.conf serves it.
    rtmp_control_url: str | None = None
    # An encoder that drops may come back this long before its live ends (nginx-rtmp, IVS).
    rtmp_reconnect_grace_s: float = Field(10.0, ge=0, le=3600)
    # Mux webhook signing secrets besides the admin's settings (comma-separated, for rotation).
    mux_webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The shared secret EventBridge sends in X-Vitrine-Webhook-Secret (besides the settings').
    ivs_webhook_secret: SecretStr | None = None
    # How often lives whose grace ran out are looked for.
    grace_check_interval_s: float = Field(1.0, gt=0, le=60)
    # nginx's on_publish / on_publish_done URLs carry `?secret=<this>`.
    rtmp_callback_secret: SecretStr = SecretStr(INSECURE_RTMP_CALLBACK_SECRET)

    @field_validator("mux_webhook_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_insecure_callback_secret_in_production(self) -> Self:
        if self.vitrine_env is Environment.PRODUCTION:
            secret = self.rtmp_callback_secret.get_secret_value()
            if secret == INSECURE_RTMP_CALLBACK_SECRET or len(secret) < 32:
                raise ValueError(
                    "RTMP_CALLBACK_SECRET must be set to a random value of 32+ characters"
                )
        return self
