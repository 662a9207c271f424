"""Restream (multistreaming): the encoder publishes once to Restream, which relays the live to the
shop's channels (YouTube, Facebook, Twitch…); Vitrine's viewers play the URL from the settings.

The stream key is the Restream account's, shared by every live: the admin enters it, or gives an
OAuth access token (scope `stream.read`) and each new live fetches the current key from Restream's
`GET /v2/user/streamKey`, so a key regenerated in Restream's dashboard is picked up. Restream
sends no webhooks for a broadcast: the admin starts and ends the live in Vitrine.
"""

from typing import Any
from uuid import UUID

import httpx

from contracts.streams import Platform
from services.streams.providers.base import (
    Ingest,
    InvalidProviderConfig,
    ProviderUnavailable,
    check_keys,
    check_url,
)

API_URL = "https://api.restream.io"
INGEST_URL = "rtmps://live.restream.io/live"
CONFIG_KEYS = {"ingest_url", "playback_url", "api_url"}
SECRET_NAMES = ("stream_key", "access_token")
TIMEOUT_S = 10.0
MAX_KEY_LENGTH = 256


class RestreamProvider:
    platform = Platform.RESTREAM

    def __init__(self, *, config: dict[str, Any], secrets: dict[str, str]) -> None:
        self.ingest_url = config.get("ingest_url") or INGEST_URL
        self.playback_url = config.get("playback_url")
        self.api_url = config.get("api_url") or API_URL
        self.stream_key = secrets.get("stream_key")
        self.access_token = secrets.get("access_token")

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        """`playback_url` is required (Restream has no player of its own for the shop's viewers);
        it may name each live with `{playback_id}`."""
        check_keys(config, allowed=CONFIG_KEYS, required={"playback_url"})
        playback = check_url(config["playback_url"], name="playback_url", schemes=("http", "https"))
        try:
            playback.format(playback_id="x")
        except (KeyError, IndexError, ValueError):
            raise InvalidProviderConfig(
                "playback_url may only use the {playback_id} placeholder"
            ) from None
        clean: dict[str, Any] = {"playback_url": playback}
        if config.get("ingest_url"):
            clean["ingest_url"] = check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps", "srt")
            )
        if config.get("api_url"):
            clean["api_url"] = check_url(
                config["api_url"], name="api_url", schemes=("http", "https")
            )
        return clean

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        if not self.playback_url:
            raise InvalidProviderConfig("Restream needs playback_url in the settings")
        return Ingest(
            ingest_url=self.ingest_url,
            stream_key=await self._account_key(),
            playback_url=self.playback_url.format(playback_id=playback_id),
        )

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        """A Restream key is regenerated in Restream's dashboard; this takes the current one."""
        return await self._account_key()

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        return None  # nothing was created at Restream

    async def _account_key(self) -> str:
        if self.access_token:
            return await self._fetch_key()
        if self.stream_key:
            return self.stream_key
        raise InvalidProviderConfig("Restream needs the secret stream_key or access_token")

    async def _fetch_key(self) -> str:
        url = f"{self.api_url}/v2/user/streamKey"
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
                response = await http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"Restream is unreachable: {type(error).__name__}") from None
        if response.status_code in (401, 403):
            raise ProviderUnavailable(
                "Restream refused the access token: renew it in the settings (scope stream.read)"
            )
        if response.status_code != 200:
            raise ProviderUnavailable(f"Restream answered {response.status_code}")
        try:
            key = response.json()["streamKey"]
        except (ValueError, KeyError, TypeError):
            raise ProviderUnavailable("Restream's answer has no streamKey") from None
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ProviderUnavailable("Restream's answer has no usable streamKey")
        return key
