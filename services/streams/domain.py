"""The rules of a live, free of I/O: its state machine and its stream key."""

import hashlib
import secrets
from datetime import datetime, timedelta

from contracts.streams import StreamStatus

STREAM_KEY_PREFIX = "live_"
STREAM_KEY_BYTES = 32  # 256 bits of randomness
PLAYBACK_ID_BYTES = 16
# "Now" as an admin types it: a form filled a moment ago is not in the past.
SCHEDULE_TOLERANCE = timedelta(minutes=1)


class InvalidTransition(Exception):
    """The live is not in a state that allows this action."""

    def __init__(self, action: str, status: StreamStatus) -> None:
        super().__init__(f"cannot {action} a live that is {status.value}")
        self.action = action
        self.status = status


def start(status: StreamStatus) -> StreamStatus:
    """A scheduled live goes on air."""
    if status is not StreamStatus.SCHEDULED:
        raise InvalidTransition("start", status)
    return StreamStatus.LIVE


def end(status: StreamStatus) -> StreamStatus:
    """A live on air goes off air, for good."""
    if status is not StreamStatus.LIVE:
        raise InvalidTransition("end", status)
    return StreamStatus.ENDED


class InvalidSchedule(ValueError):
    """A live cannot be scheduled at that moment."""

    field = "scheduled_at"


def check_schedule(scheduled_at: datetime | None, *, now: datetime) -> None:
    """A live is scheduled from now on (a minute's tolerance), never in the past."""
    if scheduled_at is not None and scheduled_at < now - SCHEDULE_TOLERANCE:
        raise InvalidSchedule("scheduled_at is in the past: schedule the live from now on")


def ensure_deletable(status: StreamStatus) -> None:
    """A live on air cannot be deleted: end it first."""
    if status is StreamStatus.LIVE:
        raise InvalidTransition("delete", status)


def ensure_key_rotatable(status: StreamStatus) -> None:
    """An ended live has no use for a new key."""
    if status is StreamStatus.ENDED:
        raise InvalidTransition("rotate the key of", status)


def new_stream_key() -> str:
    """A secret the encoder (OBS) publishes with."""
    return STREAM_KEY_PREFIX + secrets.token_urlsafe(STREAM_KEY_BYTES)


def hash_stream_key(stream_key: str) -> str:
    """What the database indexes to find a live from the key nginx-rtmp sends (sha256 hex)."""
    return hashlib.sha256(stream_key.encode()).hexdigest()


def new_playback_id() -> str:
    """The public id viewers' players use; it reveals nothing about the key."""
    return secrets.token_urlsafe(PLAYBACK_ID_BYTES)
