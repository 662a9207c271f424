"""Events of the chat service."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from contracts.registry import Payload, event


class ChatMessage(Payload):
    """A chat message as viewers see it: plain text, never HTML."""

    id: UUID
    user_id: str
    display_name: str
    message: str
    created_at: datetime
    is_pinned: bool = False


class BanScope(StrEnum):
    LIVE = "live"
    SHOP = "shop"


@event("chat.posted")
class ChatPosted(Payload):
    """A message appeared in the live's chat."""

    message: ChatMessage


@event("chat.deleted")
class ChatDeleted(Payload):
    """A moderator removed a message; viewers remove it from their screen."""

    message_id: UUID


@event("chat.pinned")
class ChatPinned(Payload):
    """A message is pinned on top of the chat."""

    message: ChatMessage


@event("chat.unpinned")
class ChatUnpinned(Payload):
    """A pinned message was unpinned."""

    message_id: UUID


@event("chat.user_banned")
class ChatUserBanned(Payload):
    """A user may no longer post, in this live or in the whole shop, until `until` (or forever)."""

    user_id: str
    scope: BanScope
    until: datetime | None = None
    reason: str | None = None
