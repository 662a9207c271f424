"""Settings of the streams service (12-factor, read from the environment)."""

from typing import Self

from pydantic import SecretStr, model_validator

from chassis.settings import Environment, ServiceSettings

INSECURE_RTMP_CALLBACK_SECRET = "vitrine-dev-rtmp-callback-secret-change-me"  # noqa: S105


class StreamsSettings(ServiceSettings):
    streams_port: int = 8001
    # nginx-rtmp defaults (self-hosted); the admin settings may override them.
    rtmp_ingest_url: str = "rtmp://127.0.0.1:1935/live"
    hls_base_url: str = "http://127.0.0.1:8080/hls"
    # nginx's on_publish / on_publish_done URLs carry `?secret=<this>`.
    rtmp_callback_secret: SecretStr = SecretStr(INSECURE_RTMP_CALLBACK_SECRET)

    @model_validator(mode="after")
    def _refuse_insecure_callback_secret_in_production(self) -> Self:
        if self.vitrine_env is Environment.PRODUCTION:
            secret = self.rtmp_callback_secret.get_secret_value()
            if secret == INSECURE_RTMP_CALLBACK_SECRET or len(secret) < 32:
                raise ValueError(
                    "RTMP_CALLBACK_SECRET must be set to a random value of 32+ characters"
                )
        return self
