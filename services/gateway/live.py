"""A live as a viewer first sees it: the stream with its products, pinned messages and figures.

Gathered from the services that exist; the websocket snapshot and `GET /api/live/streams/{id}`
both come from here.
"""

import asyncio
import logging
import time
from typing import Any

from fastapi import HTTPException

from services.gateway.presence import Presence
from services.gateway.upstream import Upstream

log = logging.getLogger(__name__)
RECENT = 50  # chat messages a viewer sees on arrival


async def gather_live(
    *, upstream: Upstream, presence: Presence, stream_id: str, token: str | None
) -> dict[str, Any] | None:
    """The aggregated live, or None when the caller may not see it. The stream decides; the other
    parts are extras a viewer can do without while their service is away."""
    live = f"/api/live/streams/{stream_id}"
    (status, stream), products, featured, pinned, recent, figures = await asyncio.gather(
        upstream.get_json("streams", live, token=token),
        _optional(upstream, "products", f"{live}/products", [], token=token),
        _optional(upstream, "products", f"{live}/featured", None, token=token),
        _optional(upstream, "chat", f"/api/live/chat/pinned?stream_id={stream_id}", []),
        _optional(upstream, "chat", f"/api/live/chat?stream_id={stream_id}&limit={RECENT}", {}),
        presence.read_figures(stream_id),
    )
    if status == 404:
        return None
    if status != 200:
        raise HTTPException(status, stream.get("detail") if isinstance(stream, dict) else None)
    return {
        "stream": stream,
        "products": products,
        "featured_product": featured,
        "pinned_messages": pinned,
        "recent_messages": recent.get("items", []),
        "viewers": figures.model_dump(),
    }


async def _optional(
    upstream: Upstream, service: str, path: str, default: Any, *, token: str | None = None
) -> Any:
    try:
        status, body = await upstream.get_json(service, path, token=token)
    except HTTPException as error:
        log.warning("%s left out of a live's view: %s", service, error.detail)
        return default
    return body if status == 200 else default


class Visibility:
    """Whether viewers may watch a live, asked of the streams service and remembered briefly, so
    a wave of sockets costs one call and a made-up id costs no JetStream consumer."""

    def __init__(self, upstream: Upstream, *, seen_s: float = 5.0, unseen_s: float = 2.0) -> None:
        self.upstream = upstream
        self.seen_s = seen_s
        self.unseen_s = unseen_s
        self._known: dict[str, tuple[float, bool]] = {}

    def forget(self, stream_id: str) -> None:
        """The live ended or went away: ask again next time."""
        self._known.pop(stream_id, None)

    async def visible(self, stream_id: str) -> bool:
        now = time.monotonic()
        known = self._known.get(stream_id)
        if known is not None and known[0] > now:
            return known[1]
        status, _ = await self.upstream.get_json("streams", f"/api/live/streams/{stream_id}")
        if status not in (200, 404):
            raise HTTPException(503, "the streams service cannot tell right now")
        visible = status == 200
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[stream_id] = (now + (self.seen_s if visible else self.unseen_s), visible)
        return visible
