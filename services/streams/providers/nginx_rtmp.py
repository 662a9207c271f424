"""Self-hosted nginx-rtmp: Vitrine makes the key and nginx asks us before each publish.

nginx's `on_publish` callback is answered with `302 Location: <playback_id>`, which makes
nginx-rtmp rename the published stream: HLS files and recordings are named by the public playback
id, so the stream key never reaches viewers. When the encoder leaves, the live ends only if it does
not come back within `reconnect_grace_s`. Recordings become replays once remuxed to MP4
(deploy/nginx-rtmp/record-done.sh posts on_record_done then).

When the admin ends a live, its publisher is dropped through nginx-rtmp's control module
(`<control_url>/drop/publisher?app=<app>&name=<playback id>`, the callback secret in a header):
the encoder, the HLS and the recording stop at once, and its reconnecting is refused.
"""

import re
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from contracts.streams import Platform
from services.streams.providers.base import (
    EncoderStop,
    Ingest,
    InvalidProviderConfig,
    ProviderUnavailable,
    check_keys,
    check_url,
)

CONFIG_KEYS = {"ingest_url", "hls_base_url", "replay_base_url", "control_url", "reconnect_grace_s"}
MAX_GRACE_S = 3600
CONTROL_SECRET_HEADER = "X-Vitrine-Rtmp-Secret"  # noqa: S105 (a header name)
CONTROL_TIMEOUT_S = 3.0
# A replay as deploy/nginx-rtmp/record-done.sh makes it: the playback id (token_urlsafe), .mp4.
REPLAY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}\.mp4$")


def control_beside(hls_base_url: str) -> str:
    """Where deploy/nginx-rtmp/nginx.conf serves the control module: the HLS server's /control."""
    parts = urlsplit(hls_base_url)
    return f"{parts.scheme}://{parts.netloc}/control"


class NginxRtmpProvider:
    platform = Platform.NGINX_RTMP

    def __init__(
        self,
        *,
        ingest_url: str,
        hls_base_url: str,
        replay_base_url: str,
        reconnect_grace_s: float,
        control_url: str | None = None,
        control_secret: str | None = None,
    ) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.hls_base_url = hls_base_url.rstrip("/")
        self.replay_base_url = replay_base_url.rstrip("/")
        self.reconnect_grace_s = reconnect_grace_s
        self.control_url = control_url.rstrip("/") if control_url else None
        self.control_secret = control_secret

    @property
    def app(self) -> str | None:
        """The RTMP application encoders publish to: the ingest URL's path (`live`)."""
        return urlsplit(self.ingest_url).path.strip("/") or None

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        """Both URLs are optional overrides of the environment's defaults."""
        check_keys(config, allowed=CONFIG_KEYS, required=set())
        clean: dict[str, Any] = {}
        if config.get("ingest_url"):
            clean["ingest_url"] = check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps")
            )
        for name in ("hls_base_url", "replay_base_url", "control_url"):
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

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop:
        """Drop the live's publisher; nginx then closes its HLS and recording, and calls
        on_publish_done (and record-done.sh) as if the encoder had left."""
        if not self.control_url or not self.app:
            raise ProviderUnavailable("nginx-rtmp's control URL or application is not set")
        try:
            async with httpx.AsyncClient(timeout=CONTROL_TIMEOUT_S) as client:
                answer = await client.get(
                    f"{self.control_url}/drop/publisher",
                    params={"app": self.app, "name": playback_id},
                    headers={CONTROL_SECRET_HEADER: self.control_secret or ""},
                )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"nginx-rtmp's control is unreachable: {type(error).__name__}"
            ) from None
        dropped = answer.text.strip()
        # "Live stream not found" (400): nothing publishes under that name, or no longer.
        if answer.status_code == 400 and "live stream not found" in dropped.lower():
            dropped = "0"
        elif not answer.is_success or not dropped.isdigit():
            raise ProviderUnavailable(f"nginx-rtmp's control answered {answer.status_code}")
        if dropped == "0":
            return EncoderStop(stopped=False, detail="nothing was publishing")
        return EncoderStop(stopped=True, detail="nginx-rtmp dropped the publisher")
