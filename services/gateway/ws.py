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
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from chassis.auth import InvalidToken, Principal
from services.gateway.fanout import StreamHub, Viewer
from services.gateway.live import gather_live
from services.gateway.rawsocket import EXTENSION, text_frame

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TRY_AGAIN = 1013
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PONG = text_frame(b'{"type":"pong"}')


def _error(detail: str, status: int) -> bytes:
    return text_frame(orjson.dumps({"type": "error", "data": {"status": status, "detail": detail}}))


async def snapshot_of(websocket: WebSocket, hub: StreamHub) -> tuple[int, dict[str, Any]] | None:
    """(seq, data): the live as of `seq`, shared by the viewers joining until the next event."""
    state = websocket.app.state
    async with hub.snapshot_lock:
        cached = hub.snapshot_cache
        if cached is not None and cached[0] == hub.visible_seq:
            return cached[1], cached[2]
        visible_seq, seq = hub.visible_seq, hub.last_seq
        # Fetched as an anonymous viewer: whatever the caller, no secret can reach a socket.
        data = await gather_live(
            upstream=state.upstream, presence=state.presence, stream_id=hub.stream_id, token=None
        )
        if data is None:
            return None
        hub.snapshot_cache = (visible_seq, seq, data)
        return seq, data


@router.websocket("/ws/live/{stream_id}")
async def watch_live(
    websocket: WebSocket,
    stream_id: str,
    token: str | None = None,
    since: str | None = None,
    session_id: str | None = None,
) -> None:
    """`?token=` signs the viewer in; `?since=<seq>` resumes after the last event it saw."""
    state = websocket.app.state
    socket = websocket.scope.get("extensions", {}).get(EXTENSION)
    await websocket.accept()
    if socket is None:
        await websocket.close(1011, "served without Vitrine's websocket protocol")
        return
    principal: Principal | None = None
    try:
        stream_id = str(uuid.UUID(stream_id))
        resume_after = None if since is None else int(since)
        if resume_after is not None and resume_after < 0:
            raise ValueError("since must be a sequence number ≥ 0")
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

    try:
        visible = await state.visibility.visible(stream_id)
    except HTTPException:
        await websocket.close(CLOSE_TRY_AGAIN, "the live cannot be checked now; try again")
        return
    if not visible:
        await websocket.close(CLOSE_NOT_FOUND, "no such live")
        return
    fanout = state.fanout
    try:
        hub = await fanout.hub(stream_id)
    except Exception as error:
        log.warning("cannot follow live %s: %s", stream_id, error)
        await websocket.close(CLOSE_TRY_AGAIN, "events are unavailable now; try again")
        return
    viewer = Viewer(socket, max_buffer=state.settings.ws_max_buffer_bytes)
    hub.add(viewer)
    joined_at = time.monotonic()
    session = session_id or secrets.token_urlsafe(12)
    user_id = principal.user_id if principal else None
    counted = False
    try:
        if not await _start(websocket, hub, viewer, since=resume_after):
            return
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


async def _start(
    websocket: WebSocket, hub: StreamHub, viewer: Viewer, *, since: int | None
) -> bool:
    """Send the replay since `since`, or a snapshot; False when the socket was closed instead."""
    fanout = websocket.app.state.fanout
    upto = hub.last_seq
    replayed = None
    if since is not None:
        try:
            replayed = await fanout.replay(hub, since=since, upto=upto)
        except Exception as error:  # JetStream hiccup: a snapshot serves the viewer as well
            log.warning("replay of %s since %s failed: %s", hub.stream_id, since, error)
    if replayed is not None:
        viewer.sent_seq = since or 0
        viewer.send_frames(replayed)
        return True
    try:
        snapshot = await snapshot_of(websocket, hub)
    except HTTPException:
        await websocket.close(CLOSE_TRY_AGAIN, "the live cannot be loaded now; try again")
        return False
    if snapshot is None:
        await websocket.close(CLOSE_NOT_FOUND, "no such live")
        return False
    seq, data = snapshot
    viewer.sent_seq = seq
    frame = {"seq": seq, "type": "snapshot", "stream_id": hub.stream_id, "data": data}
    viewer.send(text_frame(orjson.dumps(frame)))
    return True


async def _post_chat(
    websocket: WebSocket, viewer: Viewer, principal: Principal, stream_id: str, text: object
) -> None:
    """Post for the viewer; the message itself comes back to everyone as `chat.posted`."""
    try:
        status, body, headers = await websocket.app.state.upstream.send_json(
            "POST", "chat", "/api/live/chat",
            body={"stream_id": stream_id, "message": text}, token=principal.token,
        )  # fmt: skip
    except HTTPException as error:
        viewer.send(_error(str(error.detail), error.status_code))
        return
    if status == 202:
        viewer.send(text_frame(orjson.dumps({"type": "chat.held", "data": body})))
    elif status >= 400:
        detail = body.get("detail") if isinstance(body, dict) else None
        data: dict[str, Any] = {"status": status, "detail": detail or "refused"}
        if retry_after := headers.get("retry-after"):
            data["retry_after"] = int(retry_after)
        viewer.send(text_frame(orjson.dumps({"type": "error", "data": data})))


async def _handle_client_frame(
    websocket: WebSocket, viewer: Viewer, principal: Principal | None, stream_id: str
) -> None:
    received = await websocket.receive()
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    try:
        message = orjson.loads(received.get("text") or received.get("bytes") or b"")
        kind = message.get("type") if isinstance(message, dict) else None
    except orjson.JSONDecodeError:
        kind = None
    if kind == "ping":
        viewer.send(PONG)
    elif kind == "chat.post":
        if principal is None:
            viewer.send(_error("sign in to chat", 401))
        else:
            await _post_chat(websocket, viewer, principal, stream_id, message.get("message"))
    else:
        viewer.send(_error("expected a JSON frame of type ping or chat.post", 400))
