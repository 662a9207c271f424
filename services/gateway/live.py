"""A live as a viewer first sees it: the stream with its products, pinned messages and figures.

Gathered from the services that exist; the websocket snapshot and `GET /api/live/streams/{id}`
both come from here.
"""

import asyncio
import functools
import logging
import time
from typing import Any

from fastapi import HTTPException

from services.gateway.presence import Presence
from services.gateway.upstream import Upstream

log = logging.getLogger(__name__)
RECENT = 50  # chat messages a viewer sees on arrival
RETRY_AFTER_S = 1.0  # the streams service did not answer whether a live is on air


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
        "viewers": figures,
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
    """Whether viewers may watch a live, asked of the streams service and remembered briefly.

    One question per live at a time (single flight): a crowd arriving together costs one call,
    and a made-up id costs no JetStream consumer. A live known to be on air stays watchable while
    its answer is refreshed, and for up to `stale_s` while the streams service is slow or away,
    so a hiccup there never turns away the viewers of a show already running.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        seen_s: float = 5.0,
        unseen_s: float = 2.0,
        stale_s: float = 60.0,
    ) -> None:
        self.upstream = upstream
        self.seen_s = seen_s
        self.unseen_s = unseen_s
        self.stale_s = stale_s
        # Live → (fresh until, visible, asked at), on the monotonic clock.
        self._known: dict[str, tuple[float, bool, float]] = {}
        self._asking: dict[str, asyncio.Task[bool]] = {}
        self.asked = 0  # calls made to the streams service

    def forget(self, stream_id: str) -> None:
        """The live ended or went away: ask again next time."""
        self._known.pop(stream_id, None)

    async def visible(self, stream_id: str) -> bool:
        now = time.monotonic()
        known = self._known.get(stream_id)
        if known is not None and known[0] > now:
            return known[1]
        asking = self._asking.get(stream_id)
        if asking is None:
            asking = asyncio.create_task(self._ask(stream_id))
            self._asking[stream_id] = asking
            asking.add_done_callback(functools.partial(self._asked, stream_id))
        if known is not None and known[1] and now - known[2] < self.stale_s:
            return True  # on air a moment ago: watch while the answer is refreshed
        return await asyncio.shield(asking)

    def _asked(self, stream_id: str, asking: asyncio.Task[bool]) -> None:
        self._asking.pop(stream_id, None)
        unanswered = not asking.cancelled() and asking.exception() is not None
        # Unanswered: a live known on air is not asked again for a second (no hammering of a
        # struggling service), and stays watchable within `stale_s`.
        if unanswered and (known := self._known.get(stream_id)) is not None:
            self._known[stream_id] = (time.monotonic() + RETRY_AFTER_S, known[1], known[2])

    async def _ask(self, stream_id: str) -> bool:
        self.asked += 1
        asked_at = time.monotonic()
        try:
            status, _ = await self.upstream.get_json("streams", f"/api/live/streams/{stream_id}")
        except HTTPException:
            status = 503
        if status not in (200, 404):
            raise HTTPException(503, "the streams service cannot tell right now")
        visible = status == 200
        if len(self._known) > 10_000:
            self._known.clear()
        fresh_for = self.seen_s if visible else self.unseen_s
        self._known[stream_id] = (asked_at + fresh_for, visible, asked_at)
        return visible
