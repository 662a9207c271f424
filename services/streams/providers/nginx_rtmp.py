"""Self-hosted nginx-rtmp: Vitrine makes the key and nginx asks us before each publish.

nginx's `on_publish` callback is answered with `302 Location: <playback_id>`, which makes
nginx-rtmp rename the published stream: HLS files are named by the public playback id, so the
stream key never reaches viewers.
"""

from typing import Any
from uuid import UUID

from contracts.streams import Platform
from services.streams.providers.base import Ingest, check_keys, check_url

CONFIG_KEYS = {"ingest_url", "hls_base_url"}


class NginxRtmpProvider:
    platform = Platform.NGINX_RTMP

    def __init__(self, *, ingest_url: str, hls_base_url: str) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.hls_base_url = hls_base_url.rstrip("/")

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        """Both URLs are optional overrides of the environment's defaults."""
        check_keys(config, allowed=CONFIG_KEYS, required=set())
        clean: dict[str, Any] = {}
        if config.get("ingest_url"):
            clean["ingest_url"] = check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps")
            )
        if config.get("hls_base_url"):
            clean["hls_base_url"] = check_url(
                config["hls_base_url"], name="hls_base_url", schemes=("http", "https")
            )
        return clean

    def playback_url(self, playback_id: str) -> str:
        return f"{self.hls_base_url}/{playback_id}.m3u8"

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        return Ingest(
            ingest_url=self.ingest_url,
            stream_key=stream_key,
            playback_url=self.playback_url(playback_id),
        )

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        # nginx knows no keys: the next on_publish is checked against the new hash.
        return stream_key

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        return None
