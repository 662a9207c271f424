"""Restream (multistreaming): the encoder publishes once to Restream, which relays the live to the
shop's channels (YouTube, Facebook, Twitch…); Vitrine's viewers play the URL from the settings.

The stream key is the Restream account's, shared by every live: the admin enters it, or connects
the account with OAuth (scope `stream.read`) and each new live fetches the current key from
Restream's `GET /v2/user/streamKey`, so a key regenerated in Restream's dashboard is picked up.
An access token lasts an hour: given the app's `client_id` / `client_secret` and a refresh token,
an expired one is refreshed, and the new pair (Restream invalidates the old one at once) is stored
under the settings' lock, so concurrent requests refresh only once. Restream sends no webhooks
for a broadcast: the admin starts and ends the live in Vitrine.
"""

from collections.abc import Awaitable
from typing import Any
from uuid import UUID

import httpx

from contracts.streams import Platform
from services.streams.providers.base import (
    EncoderStop,
    Ingest,
    InvalidProviderConfig,
    ProviderUnavailable,
    SecretsStore,
    check_keys,
    check_playback_template,
    check_url,
)

API_URL = "https://api.restream.io"
INGEST_URL = "rtmps://live.restream.io/live"
CONFIG_KEYS = {"ingest_url", "playback_url", "api_url", "client_id"}
TIMEOUT_S = 10.0
MAX_KEY_LENGTH = 256


class RestreamProvider:
    platform = Platform.RESTREAM

    def __init__(
        self,
        *,
        config: dict[str, Any],
        secrets: dict[str, str],
        store: SecretsStore | None = None,
    ) -> None:
        self.ingest_url = config.get("ingest_url") or INGEST_URL
        self.playback_url = config.get("playback_url")
        self.api_url = config.get("api_url") or API_URL
        self.client_id = config.get("client_id")
        self.client_secret = secrets.get("client_secret")
        self.stream_key = secrets.get("stream_key")
        self.access_token = secrets.get("access_token")
        self.refresh_token = secrets.get("refresh_token")
        self.store = store

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        """`playback_url` is required (Restream has no player of its own for the shop's viewers);
        it may name each live with `{playback_id}`."""
        check_keys(config, allowed=CONFIG_KEYS, required={"playback_url"})
        playback = check_playback_template(
            config["playback_url"], name="playback_url", required=False
        )
        clean: dict[str, Any] = {"playback_url": playback}
        if config.get("ingest_url"):
            clean["ingest_url"] = check_url(
                config["ingest_url"], name="ingest_url", schemes=("rtmp", "rtmps", "srt")
            )
        if config.get("api_url"):
            clean["api_url"] = check_url(
                config["api_url"], name="api_url", schemes=("http", "https")
            )
        if config.get("client_id"):
            if not isinstance(config["client_id"], str) or len(config["client_id"]) > 200:
                raise InvalidProviderConfig("client_id must be Restream's application id")
            clean["client_id"] = config["client_id"]
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

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop | None:
        return None  # Restream's API cannot end the account's broadcast: OBS stops it

    def _can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret and self.store)

    async def _account_key(self) -> str:
        if not self.access_token and not self._can_refresh():
            if self.stream_key:
                return self.stream_key
            raise InvalidProviderConfig("Restream needs the secret stream_key or access_token")
        async with httpx.AsyncClient(base_url=self.api_url, timeout=TIMEOUT_S) as http:
            if self.access_token:
                key = await self._fetch_key(http)
                if key is not None:
                    return key
                if not self._can_refresh():
                    raise ProviderUnavailable(
                        "Restream refused the access token (they last an hour): renew it in the"
                        " settings, or add refresh_token, client_id and client_secret"
                    )
            await self._refresh(http)
            key = await self._fetch_key(http)
        if key is None:
            raise ProviderUnavailable("Restream refused the refreshed access token")
        return key

    async def _fetch_key(self, http: httpx.AsyncClient) -> str | None:
        """The account's current key; None when the access token is refused."""
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        response = await _call(http.get("/v2/user/streamKey", headers=headers))
        if response.status_code in (401, 403):
            return None
        if response.status_code != 200:
            raise ProviderUnavailable(f"Restream answered {response.status_code}")
        try:
            key = response.json()["streamKey"]
        except (ValueError, KeyError, TypeError):
            raise ProviderUnavailable("Restream's answer has no streamKey") from None
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ProviderUnavailable("Restream's answer has no usable streamKey")
        return key

    async def _refresh(self, http: httpx.AsyncClient) -> None:
        """A new token pair, stored before it is used; if another request refreshed since this
        provider read the settings, its pair is taken instead."""
        assert self.store is not None and self.client_id and self.client_secret
        stale, client = self.access_token, (self.client_id, self.client_secret)

        async def refreshed(stored: dict[str, str]) -> dict[str, str]:
            if stored.get("access_token") and stored["access_token"] != stale:
                return {}
            if not stored.get("refresh_token"):
                raise ProviderUnavailable("Restream needs refresh_token to renew the access token")
            form = {"grant_type": "refresh_token", "refresh_token": stored["refresh_token"]}
            response = await _call(http.post("/oauth/token", data=form, auth=client))
            if response.status_code in (400, 401, 403):
                raise ProviderUnavailable(
                    "Restream refused the refresh token: connect the account again"
                    " (new access_token and refresh_token in the settings)"
                )
            if response.status_code != 200:
                raise ProviderUnavailable(f"Restream answered {response.status_code}")
            try:
                tokens = response.json()
                return {
                    "access_token": str(tokens["access_token"]),
                    "refresh_token": str(tokens["refresh_token"]),
                }
            except (ValueError, KeyError, TypeError):
                raise ProviderUnavailable("Restream's answer has no token pair") from None

        stored = await self.store(refreshed)
        self.access_token, self.refresh_token = stored["access_token"], stored["refresh_token"]


async def _call(request: Awaitable[httpx.Response]) -> httpx.Response:
    try:
        return await request
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"Restream is unreachable: {type(error).__name__}") from None
