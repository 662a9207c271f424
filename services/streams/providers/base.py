"""The one interface every video provider implements."""

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from contracts.streams import Platform


class UnsupportedPlatform(Exception):
    """The platform is known but has no provider yet."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(f"platform not supported yet: {platform.value}")
        self.platform = platform


class InvalidProviderConfig(ValueError):
    """The admin's settings for a provider are incomplete or wrong."""


class ProviderUnavailable(Exception):
    """The provider's API refused or failed a call (answered 502 to the admin)."""


@dataclass(frozen=True)
class Ingest:
    """Where the encoder publishes and where viewers play."""

    ingest_url: str | None
    stream_key: str
    playback_url: str | None
    provider_ref: str | None = None


class Kind(enum.Enum):
    CONNECTED = "connected"  # the encoder is connected (not yet necessarily on air)
    LIVE = "live"  # the provider receives the picture: the live is on air
    DISCONNECTED = "disconnected"  # the encoder left; it may come back within the grace
    ENDED = "ended"  # the provider gave up waiting: the broadcast is over
    REPLAY_READY = "replay_ready"  # the recording can be played
    OTHER = "other"  # known to the provider, nothing for us to do (but show its state, if any)


@dataclass(frozen=True)
class ProviderEvent:
    source: str  # "nginx-rtmp", "mux", "ivs"
    type: str  # the provider's own name for it, shown to the admin
    kind: Kind
    id: str | None = None  # the provider's webhook id, when it has one
    occurred_at: datetime | None = None
    state: str | None = None  # the provider state to show, when not the kind's own name
    replay_url: str | None = None
    grace_s: float | None = None  # DISCONNECTED: end the live after this long (None: never)
    # What it says of the recording (services/streams/recording): a take began or ended at
    # `occurred_at`, the file holds `video_s` seconds now, the finished file lasts `duration_s`,
    # or the whole recording as the provider lists it (replacing what we pieced together).
    take: str | None = None  # "start" or "end"
    video_s: float | None = None
    duration_s: float | None = None
    recording: dict[str, Any] | None = None


@dataclass(frozen=True)
class EncoderStop:
    """What the provider did when asked to stop a live's encoder."""

    stopped: bool  # False: nothing was publishing
    detail: str


# Given the stored secrets, the ones to change (e.g. a refreshed OAuth token pair).
SecretsUpdate = Callable[[dict[str, str]], Awaitable[dict[str, str]]]
# Applies an update under the settings' lock and commits it at once; returns the secrets after.
SecretsStore = Callable[[SecretsUpdate], Awaitable[dict[str, str]]]


class VideoProvider(Protocol):
    platform: Platform

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        """Prepare a live; `stream_key` is used unless the provider makes its own."""
        ...

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        """Make the old key useless; returns the key to publish with from now on."""
        ...

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        """Forget the live at the provider (idempotent)."""
        ...

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop | None:
        """The live ended: disconnect its encoder and end its recording now (ProviderUnavailable
        if the provider failed). None when the platform offers no way to."""
        ...


def check_keys(config: dict[str, Any], *, allowed: set[str], required: set[str]) -> None:
    unknown = set(config) - allowed
    if unknown:
        raise InvalidProviderConfig(f"unknown settings: {', '.join(sorted(unknown))}")
    missing = {key for key in required if not config.get(key)}
    if missing:
        raise InvalidProviderConfig(f"missing settings: {', '.join(sorted(missing))}")


def check_url(value: object, *, name: str, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise InvalidProviderConfig(f"{name} must be a {' or '.join(schemes)} URL")
    if any(c.isspace() for c in value):
        raise InvalidProviderConfig(f"{name} must not contain spaces")
    return value.rstrip("/")


def check_playback_template(value: object, *, name: str, required: bool) -> str:
    """A playback URL naming each live with `{playback_id}` (its only placeholder)."""
    template = check_url(value, name=name, schemes=("http", "https"))
    if required and "{playback_id}" not in template:
        raise InvalidProviderConfig(f"{name} must contain {{playback_id}}")
    try:
        template.format(playback_id="x")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise InvalidProviderConfig(
            f"{name} may only use the {{playback_id}} placeholder"
        ) from None
    return template
