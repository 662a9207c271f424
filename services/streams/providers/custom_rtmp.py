"""Any other RTMP server: the admin gives its ingest URL and a playback URL template."""

from typing import Any
from uuid import UUID

from contracts.streams import Platform
from services.streams.providers.base import (
    EncoderStop,
    Ingest,
    InvalidProviderConfig,
    check_keys,
    check_playback_template,
    check_url,
)

CONFIG_KEYS = {"ingest_url", "playback_url_template"}


class CustomRtmpProvider:
    platform = Platform.CUSTOM_RTMP

    def __init__(self, *, ingest_url: str | None, playback_url_template: str | None) -> None:
        self.ingest_url = ingest_url
        self.playback_url_template = playback_url_template

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        check_keys(config, allowed=CONFIG_KEYS, required=CONFIG_KEYS)
        template = check_playback_template(
            config["playback_url_template"], name="playback_url_template", required=True
        )
        return {
            "ingest_url": check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps", "srt")
            ),
            "playback_url_template": template,
        }

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        if not self.ingest_url or not self.playback_url_template:
            raise InvalidProviderConfig("custom RTMP needs ingest_url and playback_url_template")
        return Ingest(
            ingest_url=self.ingest_url,
            stream_key=stream_key,
            playback_url=self.playback_url_template.format(playback_id=playback_id),
        )

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        return stream_key

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        return None

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop | None:
        return None  # an RTMP server Vitrine knows only by its URL: OBS stops it
