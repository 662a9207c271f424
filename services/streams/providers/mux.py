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
import urllib3
from mux_python.rest import ApiException, NotFoundException

from contracts.streams import Platform
from services.streams import recording
from services.streams.providers.base import (
    EncoderStop,
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
MAX_DURATION_S = 7 * 24 * 3600  # longer than any live Mux records (12 h)
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2.0, 3.0  # what any call to Mux waits at most

T = TypeVar("T")


class BadSignature(Exception):
    """The webhook is not from Mux (or too old to trust)."""


class _BoundedRest(mux_python.rest.RESTClientObject):
    """Every call to Mux bounded in time (mux-python waits forever by default): a Mux that does
    not answer is said as such (502) well before the gateway gives up on the streams service."""

    def request(self, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        timeout = _request_timeout or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        return super().request(*args, _request_timeout=timeout, **kwargs)


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
        configuration.retries = urllib3.Retry(total=1, read=0)  # a POST is never sent twice
        client = mux_python.ApiClient(configuration)
        client.rest_client = _BoundedRest(configuration)
        return mux_python.LiveStreamsApi(client)

    async def _call(self, call: Callable[[mux_python.LiveStreamsApi], T]) -> T:
        """mux-python is synchronous: its calls run in a thread."""
        api = self._api()
        try:
            return await asyncio.to_thread(call, api)
        except NotFoundException:
            raise
        except ApiException as error:
            raise ProviderUnavailable(f"Mux answered {error.status}: {error.reason}") from None
        except (OSError, urllib3.exceptions.HTTPError) as error:
            # urllib3's MaxRetryError (refused, unresolvable, timed out) is not an OSError.
            reason = getattr(error, "reason", None) or error
            raise ProviderUnavailable(f"Mux is unreachable: {type(reason).__name__}") from None

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

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop:
        """`complete` ends the recording (the asset) at once, without the reconnect window, but
        Mux keeps the encoder connected for another 60 s, and an encoder reconnecting then would
        start a new asset; `disable` closes the connection and refuses any new one."""
        if provider_ref is None:
            return EncoderStop(stopped=False, detail="this live has no Mux live stream")
        try:
            await self._call(lambda api: api.signal_live_stream_complete(provider_ref))
            await self._call(lambda api: api.disable_live_stream(provider_ref))
        except NotFoundException:
            return EncoderStop(stopped=False, detail="Mux no longer has this live stream")
        return EncoderStop(stopped=True, detail="Mux completed and disabled the live stream")


def _recording(asset: dict[str, Any]) -> dict[str, Any] | None:
    """The asset's recording sessions (`recording_times`: one per encoder connection, slates
    included, back to back in the file) and its `duration`; None if it lists none we can read."""
    sessions = []
    for session in asset.get("recording_times") or []:
        try:
            started_at = datetime.fromisoformat(str(session["started_at"]).replace("Z", "+00:00"))
            seconds = float(session["duration"])
        except (KeyError, TypeError, ValueError):
            return None
        if started_at.tzinfo is None or not 0 <= seconds < MAX_DURATION_S:
            return None
        sessions.append((started_at, seconds))
    duration = asset.get("duration")
    seconds_long = (
        float(duration)
        if isinstance(duration, int | float)
        and not isinstance(duration, bool)
        and 0 <= duration < MAX_DURATION_S
        else None
    )
    if not sessions and seconds_long is None:
        return None
    return recording.from_sessions(sessions, seconds_long)


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
            recording=_recording(data),
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
