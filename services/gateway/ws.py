"""The viewer websocket `GET /ws/live/{stream_id}` (DESIGN.md §3).

First frame: a snapshot, or — with `?since=<seq>` — the events missed since then, replayed from
JetStream; then every event of the live, in order, each exactly once.
"""

import logging
import re
import secrets
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from chassis.auth import InvalidToken, Principal
from services.gateway.fanout import StreamHub, Viewer
from services.gateway.live import gather_live
from services.gateway.rawsocket import EXTENSION, text_frame

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PONG = text_frame(b'{"type":"pong"}')


def _error(detail: str, status: int) -> bytes:
    return text_frame(orjson.dumps({"type": "error", "data": {"status": status, "detail": detail}}))


async def snapshot_of(websocket: WebSocket, hub: StreamHub) -> tuple[int, dict[str, Any]] | None:
    """The live as of `hub.last_seq`, shared by every viewer joining at that point."""
    state = websocket.app.state
    async with hub.snapshot_lock:
        seq = hub.last_seq
        if hub.snapshot_cache is not None and hub.snapshot_cache[0] == seq:
            return hub.snapshot_cache
        # Fetched as an anonymous viewer: whatever the caller, no secret can reach a socket.
        data = await gather_live(
            upstream=state.upstream, presence=state.presence, stream_id=hub.stream_id, token=None
        )
        if data is None:
            return None
        hub.snapshot_cache = (seq, data)
        return hub.snapshot_cache


@router.websocket("/ws/live/{stream_id}")
async def watch_live(
    websocket: WebSocket,
    stream_id: str,
    token: str | None = None,
    since: int | None = None,
    session_id: str | None = None,
) -> None:
    state = websocket.app.state
    socket = websocket.scope.get("extensions", {}).get(EXTENSION)
    await websocket.accept()
    if socket is None:
        await websocket.close(1011, "served without Vitrine's websocket protocol")
        return
    principal: Principal | None = None
    try:
        stream_id = str(uuid.UUID(stream_id))
        if since is not None and since < 0:
            raise ValueError("since must be ≥ 0")
        if session_id is not None and not SESSION_ID.match(session_id):
            raise ValueError("session_id must be 8-64 letters, digits, - or _")
    except ValueError as error:
        await websocket.close(CLOSE_BAD_REQUEST, str(error)[:120])
        return
    if token:
        try:
            principal = await state.token_verifier.verify(token)
        except InvalidToken:
            await websocket.close(CLOSE_UNAUTHORIZED, "invalid token")
            return

    fanout = state.fanout
    hub = await fanout.hub(stream_id)
    viewer = Viewer(socket, max_buffer=state.settings.ws_max_buffer_bytes)
    hub.add(viewer)
    joined_at = time.monotonic()
    session = session_id or secrets.token_urlsafe(12)
    user_id = principal.user_id if principal else None
    counted = False
    try:
        upto = hub.last_seq
        # A resume needs no snapshot: the events since `since` are public and stored.
        replayed = None if since is None else await fanout.replay(hub, since=since, upto=upto)
        if replayed is None:
            snapshot = await snapshot_of(websocket, hub)
            if snapshot is None:
                await websocket.close(CLOSE_NOT_FOUND, "no such live")
                return
            seq, data = snapshot
            viewer.sent_seq = seq
            frame = {"seq": seq, "type": "snapshot", "stream_id": stream_id, "data": data}
            viewer.send(text_frame(orjson.dumps(frame)))
        else:
            viewer.sent_seq = since or 0
            viewer.send_frames(replayed)
        hub.go_live(viewer)
        state.presence.joined(stream_id, session_id=session, user_id=user_id)
        counted = True
        while True:
            await _handle_client_frame(websocket, viewer, principal, stream_id)
    except WebSocketDisconnect:
        pass
    finally:
        fanout.release(hub, viewer)
        if counted:
            state.presence.left(
                stream_id,
                session_id=session,
                user_id=user_id,
                watched_s=time.monotonic() - joined_at,
            )


async def _handle_client_frame(
    websocket: WebSocket, viewer: Viewer, principal: Principal | None, stream_id: str
) -> None:
    raw = await websocket.receive_text()
    try:
        message = orjson.loads(raw)
        kind = message.get("type") if isinstance(message, dict) else None
    except orjson.JSONDecodeError:
        kind = None
    if kind == "ping":
        viewer.send(PONG)
    elif kind == "chat.post":
        if principal is None:
            viewer.send(_error("sign in to chat", 401))
        else:
            viewer.send(_error("chat is not available on this server yet", 503))
    else:
        viewer.send(_error("expected a JSON frame of type ping or chat.post", 400))
