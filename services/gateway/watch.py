"""One viewer of one live, from the socket's accept to its close (DESIGN.md §3, §6).

`async with Watch(...) as watch:` checks that the live may be watched, joins the live's hub (this
gateway's one JetStream subscription for it), catches the viewer up — the events missed since
`since`, replayed from JetStream, or a snapshot — then streams every later event, exactly once and
in order, and counts the viewer in presence; leaving the block leaves the hub and presence. What
goes wrong on the way is a `Refused` with the close code to answer with. The wire protocol (frames
in, frames out) stays in `ws.py`.
"""

import logging
import time
from types import TracebackType
from typing import Any

import orjson
from fastapi import HTTPException

from services.gateway.deps import Gateway
from services.gateway.hub import CLOSE_TRY_AGAIN, StreamHub, Viewer
from services.gateway.live import gather_live
from services.gateway.rawsocket import RawSocket, text_frame
from services.gateway.snapshot import AlreadyShown

log = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404


class Refused(Exception):
    """The viewer cannot watch: close the socket with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Watch:
    def __init__(
        self,
        gateway: Gateway,
        *,
        stream_id: str,
        socket: RawSocket,
        viewer_id: str,
        user_id: str | None,
        since: int | None,
    ) -> None:
        self.gateway = gateway
        self.stream_id = stream_id
        self.viewer_id = viewer_id  # the viewer's session id (a tab), not a user
        self.user_id = user_id
        self.since = since
        self.viewer = Viewer(socket, max_buffer=gateway.settings.ws_max_buffer_bytes)
        self._hub: StreamHub | None = None
        self._counted_at: float | None = None

    async def __aenter__(self) -> "Watch":
        try:
            visible = await self.gateway.visibility.visible(self.stream_id)
        except HTTPException:
            raise Refused(CLOSE_TRY_AGAIN, "the live cannot be checked now; try again") from None
        if not visible:
            raise Refused(CLOSE_NOT_FOUND, "no such live")
        try:
            self._hub = await self.gateway.fanout.hub(self.stream_id)
        except Exception as error:
            log.warning("cannot follow live %s: %s", self.stream_id, error)
            raise Refused(CLOSE_TRY_AGAIN, "events are unavailable now; try again") from None
        self._hub.add(self.viewer)
        try:
            await self._catch_up(self._hub)
        except BaseException:
            self._leave_hub()
            raise
        self._hub.go_live(self.viewer)
        self.gateway.presence.joined(
            self.stream_id, session_id=self.viewer_id, user_id=self.user_id
        )
        self._counted_at = time.monotonic()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._leave_hub()
        if self._counted_at is not None:
            self.gateway.presence.left(
                self.stream_id,
                session_id=self.viewer_id,
                user_id=self.user_id,
                watched_s=time.monotonic() - self._counted_at,
            )

    def send(self, frame: bytes) -> None:
        """A frame for this viewer alone (an answer to one of its own)."""
        self.viewer.send(frame)

    def _leave_hub(self) -> None:
        if self._hub is not None:
            self.gateway.fanout.release(self._hub, self.viewer)
            self._hub = None

    async def _catch_up(self, hub: StreamHub) -> None:
        """The replay since `since` when JetStream still has it all, else a snapshot."""
        upto = hub.last_seq
        if self.since is not None:
            try:
                replayed = await self.gateway.fanout.replay(hub, since=self.since, upto=upto)
            except Exception as error:  # JetStream hiccup: a snapshot serves the viewer as well
                log.warning("replay of %s since %s failed: %s", hub.stream_id, self.since, error)
                replayed = None
            if replayed is not None:
                self.viewer.sent_seq = self.since
                self.viewer.send_frames(replayed)
                return
        try:
            snapshot = await hub.snapshot(self._gather, viewer=self.viewer)
        except HTTPException:
            raise Refused(CLOSE_TRY_AGAIN, "the live cannot be loaded now; try again") from None
        if snapshot is None:
            raise Refused(CLOSE_NOT_FOUND, "no such live")
        seq, data = snapshot
        self.viewer.sent_seq = seq
        self.viewer.already = AlreadyShown.of(data)
        frame = {"seq": seq, "type": "snapshot", "stream_id": hub.stream_id, "data": data}
        self.viewer.send(text_frame(orjson.dumps(frame)))

    async def _gather(self) -> dict[str, Any] | None:
        # Fetched as an anonymous viewer: whatever the caller, no secret can reach a socket.
        return await gather_live(
            upstream=self.gateway.upstream,
            presence=self.gateway.presence,
            stream_id=self.stream_id,
            token=None,
        )
