"""A live as a viewer first sees it: the stream with its products, pinned messages and figures.

Gathered from the services that exist; the websocket snapshot and `GET /api/live/streams/{id}`
both come from here.
"""

from typing import Any

from fastapi import HTTPException

from services.gateway.presence import Presence
from services.gateway.upstream import Upstream


async def gather_live(
    *, upstream: Upstream, presence: Presence, stream_id: str, token: str | None
) -> dict[str, Any] | None:
    """The aggregated live, or None when the caller may not see it."""
    status, stream = await upstream.get_json(
        "streams", f"/api/live/streams/{stream_id}", token=token
    )
    if status == 404:
        return None
    if status != 200:
        raise HTTPException(status, stream.get("detail") if isinstance(stream, dict) else None)
    figures = await presence.read_figures(stream_id)
    return {
        "stream": stream,
        # Products and chat join the snapshot as their services land.
        "products": [],
        "featured_product": None,
        "pinned_messages": [],
        "recent_messages": [],
        "viewers": figures.model_dump(),
    }
