"""Presence events: viewers coming and going, and the figures viewers see."""

from pydantic import Field

from contracts.registry import Payload, event


@event("viewer.joined")
class ViewerJoined(Payload):
    """A viewer started watching (a websocket opened, or a player registered)."""

    session_id: str
    user_id: str | None = None
    gateway_id: str


@event("viewer.left")
class ViewerLeft(Payload):
    """A viewer stopped watching."""

    session_id: str
    user_id: str | None = None
    gateway_id: str
    watched_seconds: float = Field(ge=0)


@event("viewers.updated")
class ViewersUpdated(Payload):
    """The live's audience figures changed."""

    current: int = Field(ge=0)
    peak: int = Field(ge=0)
    total: int = Field(ge=0)
    unique: int = Field(ge=0)
