"""Self-hosted nginx-rtmp: Vitrine makes the key and nginx asks us before each publish.

nginx's `on_publish` callback is answered with `302 Location: <playback_id>`, which makes
nginx-rtmp rename the published stream: HLS files and recordings are named by the public playback
id, so the stream key never reaches viewers. When the encoder leaves, the live ends only if it does
not come back within `reconnect_grace_s`. Recordings become replays once remuxed to MP4
(deploy/nginx-rtmp/record-done.sh posts on_record_done then).
"""

import re
from typing import Any
from uuid import UUID

from contracts.streams import Platform
from services.streams.providers.base import (
    Ingest,
    InvalidProviderConfig,
    check_keys,
    check_url,
)

CONFIG_KEYS = {"ingest_url", "hls_base_url", "replay_base_url", "reconnect_grace_s"}
MAX_GRACE_S = 3600
# A replay as deploy/nginx-rtmp/record-done.sh makes it: the playback id (token_urlsafe), .mp4.
REPLAY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}\.mp4$")


class NginxRtmpProvider:
    platform = Platform.NGINX_RTMP

    def __init__(
        self,
        *,
        ingest_url: str,
        hls_base_url: str,
        replay_base_url: str,
        reconnect_grace_s: float,
    ) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.hls_base_url = hls_base_url.rstrip("/")
        self.replay_base_url = replay_base_url.rstrip("/")
        self.reconnect_grace_s = reconnect_grace_s

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        """Both URLs are optional overrides of the environment's defaults."""
        check_keys(config, allowed=CONFIG_KEYS, required=set())
        clean: dict[str, Any] = {}
        if config.get("ingest_url"):
            clean["ingest_url"] = check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps")
            )
        for name in ("hls_base_url", "replay_base_url"):
            if config.get(name):
                clean[name] = check_url(config[name], name=name, schemes=("http", "https"))
        grace = config.get("reconnect_grace_s")
        if grace is not None:
            if isinstance(grace, bool) or not isinstance(grace, int | float):
                raise InvalidProviderConfig("reconnect_grace_s must be a number of seconds")
            if not 0 <= grace <= MAX_GRACE_S:
                raise InvalidProviderConfig(f"reconnect_grace_s must be within 0..{MAX_GRACE_S}")
            clean["reconnect_grace_s"] = grace
        return clean

    def replay_url(self, recording_path: str) -> str | None:
        """Where the replay at `recording_path` is served: an MP4 only (None otherwise), since
        browsers cannot play the FLV nginx records and record-done.sh remuxes."""
        name = recording_path.rsplit("/", 1)[-1]
        if not REPLAY_NAME.match(name):
            return None
        return f"{self.replay_base_url}/{name}"

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
