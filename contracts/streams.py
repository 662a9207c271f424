"""Events of the streams service: a live's lifecycle and its video provider's state."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from contracts.registry import Payload, event


# A live's one-way life, in order: it only ever moves forward. (No docstring: it would enter
# the events' JSON schemas.)
class StreamStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"

    @property
    def rank(self) -> int:
        """Where it is in that life (its place in the declaration order)."""
        return list(StreamStatus).index(self)

    def furthest(self, reported: "StreamStatus") -> "StreamStatus":
        """The later of the two: a late or reordered event never takes a live back."""
        return reported if reported.rank > self.rank else self


class Platform(StrEnum):
    MUX = "mux"
    AWS_IVS = "aws_ivs"
    RESTREAM = "restream"
    NGINX_RTMP = "nginx_rtmp"
    CUSTOM_RTMP = "custom_rtmp"


class StreamView(Payload):
    """What anyone may know of a live: never its stream key nor the provider's ids."""

    id: UUID
    title: str
    description: str | None = None
    status: StreamStatus
    platform: Platform
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    playback_url: str | None = None
    replay_url: str | None = None
    created_at: datetime
    updated_at: datetime


@event("stream.created")
class StreamCreated(Payload):
    """A live was scheduled."""

    stream: StreamView


@event("stream.updated")
class StreamUpdated(Payload):
    """A live's title, description, schedule or playback changed."""

    stream: StreamView
    changed: list[str] = Field(default_factory=list)


@event("stream.started")
class StreamStarted(Payload):
    """A live went on air."""

    stream: StreamView


@event("stream.ended")
class StreamEnded(Payload):
    """A live went off air."""

    stream: StreamView


@event("stream.deleted")
class StreamDeleted(Payload):
    """A live was deleted; its id will not come back."""

    stream_id: UUID


@event("stream.provider_state")
class StreamProviderStateChanged(Payload):
    """The video provider reported a state (connected, disconnected, recording_ready …)."""

    platform: Platform
    state: str = Field(min_length=1, max_length=64)
    detail: str | None = None
