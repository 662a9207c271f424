"""Mux (mux-python): a live stream per live, with public playback, a reconnect window and
recording, so an ended live becomes a replay (an asset).

Mux's webhooks carry `Mux-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`; several
secrets may be valid at once while one is rotated.
"""

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import mux_python
import orjson
from mux_python.rest import ApiException, NotFoundException

from contracts.streams import Platform
from services.streams.providers.base import (
    Ingest,
    InvalidProviderConfig,
    Kind,
    ProviderEvent,
    ProviderUnavailable,
    check_keys,
    check_url,
)

SOURCE = "mux"
API_URL = "https://api.mux.com"
INGEST_URL = "rtmps://global-live.mux.com:443/app"
PLAYBACK_URL = "https://stream.mux.com/{playback_id}.m3u8"
CONFIG_KEYS = {"api_url", "reconnect_window", "latency_mode"}
SECRET_NAMES = ("token_id", "token_secret", "webhook_secret", "webhook_secret_previous")
LATENCY_MODES = {"standard", "reduced", "low"}
DEFAULT_RECONNECT_WINDOW_S = 60
SIGNATURE_TOLERANCE_S = 300

T = TypeVar("T")


class BadSignature(Exception):
    """The webhook is not from Mux (or too old to trust)."""


class MuxProvider:
    platform = Platform.MUX

    def __init__(self, *, config: dict[str, Any], secrets: dict[str, str]) -> None:
        self.api_url = config.get("api_url") or API_URL
        self.reconnect_window = config.get("reconnect_window", DEFAULT_RECONNECT_WINDOW_S)
        self.latency_mode = config.get("latency_mode")
        self.token_id = secrets.get("token_id")
        self.token_secret = secrets.get("token_secret")

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        check_keys(config, allowed=CONFIG_KEYS, required=set())
        clean: dict[str, Any] = {}
        if config.get("api_url"):
            clean["api_url"] = check_url(
                config["api_url"], name="api_url", schemes=("http", "https")
            )
        window = config.get("reconnect_window")
        if window is not None:
            if isinstance(window, bool) or not isinstance(window, int | float):
                raise InvalidProviderConfig("reconnect_window must be a number of seconds")
            if not 0.1 <= window <= 1800:
                raise InvalidProviderConfig("reconnect_window must be within 0.1..1800 seconds")
            clean["reconnect_window"] = window
        if config.get("latency_mode"):
            if config["latency_mode"] not in LATENCY_MODES:
                raise InvalidProviderConfig(f"latency_mode: one of {', '.join(LATENCY_MODES)}")
            clean["latency_mode"] = config["latency_mode"]
        return clean

    def _api(self) -> mux_python.LiveStreamsApi:
        if not self.token_id or not self.token_secret:
            raise InvalidProviderConfig("Mux needs the secrets token_id and token_secret")
        configuration = mux_python.Configuration(host=self.api_url)
        configuration.username = self.token_id
        configuration.password = self.token_secret
        return mux_python.LiveStreamsApi(mux_python.ApiClient(configuration))

    async def _call(self, call: Callable[[mux_python.LiveStreamsApi], T]) -> T:
        """mux-python is synchronous: its calls run in a thread."""
        api = self._api()
        try:
            return await asyncio.to_thread(call, api)
        except NotFoundException:
            raise
        except ApiException as error:
            raise ProviderUnavailable(f"Mux answered {error.status}: {error.reason}") from None
        except OSError as error:
            raise ProviderUnavailable(f"Mux is unreachable: {error}") from None

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        public = [mux_python.PlaybackPolicy.PUBLIC]
        request = mux_python.CreateLiveStreamRequest(
            playback_policy=public,
            new_asset_settings=mux_python.CreateAssetRequest(playback_policy=public),
            reconnect_window=self.reconnect_window,
            passthrough=str(stream_id),
            latency_mode=self.latency_mode,
        )
        created = (await self._call(lambda api: api.create_live_stream(request))).data
        return Ingest(
            ingest_url=INGEST_URL,
            stream_key=created.stream_key,
            playback_url=PLAYBACK_URL.format(playback_id=_public_playback_id(created.playback_ids)),
            provider_ref=created.id,
        )

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        if provider_ref is None:
            raise ProviderUnavailable("this live has no Mux live stream")
        reset = await self._call(lambda api: api.reset_stream_key(provider_ref))
        return str(reset.data.stream_key)

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        if provider_ref is None:
            return
        try:
            await self._call(lambda api: api.delete_live_stream(provider_ref))
        except NotFoundException:
            return  # already gone


def _public_playback_id(playback_ids: Iterable[Any] | None) -> str | None:
    for playback in playback_ids or ():
        policy = playback.get("policy") if isinstance(playback, dict) else playback.policy
        if policy == "public":
            return str(playback["id"] if isinstance(playback, dict) else playback.id)
    return None


def verify_signature(
    *, header: str | None, body: bytes, secrets: Iterable[str], now: float | None = None
) -> None:
    """Raise BadSignature unless one of `secrets` signed `body` less than the tolerance ago."""
    if not header:
        raise BadSignature("missing Mux-Signature")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature("malformed Mux-Signature") from None
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_S:
        raise BadSignature("Mux-Signature timestamp outside the tolerance")
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
            return
    raise BadSignature("no valid v1 signature")


_KINDS = {
    "video.live_stream.connected": (Kind.CONNECTED, "connected"),
    "video.live_stream.recording": (Kind.CONNECTED, "receiving"),
    "video.live_stream.active": (Kind.LIVE, "active"),
    "video.live_stream.disconnected": (Kind.DISCONNECTED, "disconnected"),
    "video.live_stream.idle": (Kind.ENDED, "idle"),
}


def parse_webhook(body: bytes) -> tuple[str | None, ProviderEvent]:
    """The Mux live stream a (verified) webhook is about, and what it says."""
    try:
        payload = orjson.loads(body)
        kind_name = str(payload["type"])
        data = payload.get("data") or {}
        webhook_id = str(payload["id"])
        occurred_at = datetime.fromisoformat(str(payload["created_at"]).replace("Z", "+00:00"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("not a Mux webhook") from None
    if kind_name == "video.asset.ready":
        playback_id = _public_playback_id(data.get("playback_ids"))
        event = ProviderEvent(
            source=SOURCE,
            type=kind_name,
            kind=Kind.REPLAY_READY if playback_id else Kind.OTHER,
            id=webhook_id,
            occurred_at=occurred_at,
            replay_url=PLAYBACK_URL.format(playback_id=playback_id) if playback_id else None,
        )
        return data.get("live_stream_id"), event
    kind, state = _KINDS.get(kind_name, (Kind.OTHER, None))
    ref = data.get("id") if kind_name.startswith("video.live_stream.") else None
    event = ProviderEvent(
        source=SOURCE,
        type=kind_name,
        kind=kind,
        id=webhook_id,
        occurred_at=occurred_at,
        state=state,
    )
    return ref, event
