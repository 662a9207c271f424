"""What a viewer's snapshot already shows, so that no event shows it twice.

A snapshot is the live as the services answer now, with `seq` the last event the gateway has
received. The services may have committed more than the bus has carried yet — the chat service
keeps taking messages while NATS is away, and its outbox publishes them later — so a snapshot can
hold messages whose `chat.posted` comes after its `seq`. Every other event of a snapshot's parts
sets a state (the stream, a product, the featured one, a pin) that comes out the same if applied
again; a chat message would show twice. So each viewer that starts from a snapshot skips the
`chat.posted` of the messages its snapshot showed, until the chat moved past them.
"""

from datetime import datetime, timedelta
from typing import Any, NamedTuple

# A message posted this long after the snapshot's newest one was committed after all of its
# messages, whose events the chat's outbox therefore sent before.
SETTLED = timedelta(seconds=2)


class PostedMessage(NamedTuple):
    id: str
    created_at: str  # ISO 8601, as in the event


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class AlreadyShown:
    """The chat messages of one viewer's snapshot."""

    __slots__ = ("ids", "until")

    def __init__(self, ids: set[str], until: datetime) -> None:
        self.ids = ids
        self.until = until

    @classmethod
    def of(cls, snapshot: dict[str, Any]) -> "AlreadyShown | None":
        messages = [m for m in snapshot.get("recent_messages") or [] if isinstance(m, dict)]
        times = [t for m in messages if (t := _time(str(m.get("created_at", ""))))]
        if not messages or not times:
            return None
        return cls({str(m.get("id")) for m in messages}, max(times) + SETTLED)

    def shows(self, message: PostedMessage) -> bool:
        """The snapshot showed this one: its event is skipped (once)."""
        if message.id in self.ids:
            self.ids.discard(message.id)
            return True
        return False

    def passed(self, message: PostedMessage) -> bool:
        """A message this new: nothing the snapshot showed can come after it any more."""
        at = _time(message.created_at)
        return not self.ids or (at is not None and at > self.until)
