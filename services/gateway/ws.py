"""The viewer websocket `GET /ws/live/{stream_id}` (DESIGN.md §3).

The wire protocol: the query, the client's frames (ping, chat.post) and the answers to them, the
close codes. What the viewer receives and when — snapshot or replay, then every event of the
live, in order, each exactly once — is `watch.py`'s.
"""

import logging
import re
import secrets
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from prometheus_client import Gauge

from chassis.auth import InvalidToken, Principal
from services.gateway.deps import gateway_of
from services.gateway.rawsocket import EXTENSION, text_frame
from services.gateway.watch import Refused, Watch

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PONG = text_frame(b'{"type":"pong"}')


CONNECTED = Gauge("vitrine_ws_connections", "Viewers' websockets open on this process")


def _error(detail: str, status: int) -> bytes:
    return text_frame(orjson.dumps({"type": "error", "data": {"status": status, "detail": detail}}))


@router.websocket("/ws/live/{stream_id}")
async def watch_live(
    websocket: WebSocket,
    stream_id: str,
    token: str | None = None,
    since: str | None = None,
    session_id: str | None = None,
) -> None:
    """`?token=` signs the viewer in; `?since=<seq>` resumes after the last event it saw."""
    gateway = gateway_of(websocket.app)
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
            principal = await websocket.app.state.token_verifier.verify(token)
        except InvalidToken:
            await websocket.close(CLOSE_UNAUTHORIZED, "invalid token")
            return
    watch = Watch(
        gateway,
        stream_id=stream_id,
        socket=socket,
        viewer_id=session_id or secrets.token_urlsafe(12),
        user_id=principal.user_id if principal else None,
        since=resume_after,
    )
    CONNECTED.inc()
    try:
        async with watch:
            while True:
                await _handle_client_frame(websocket, watch, principal)
    except Refused as refused:
        await websocket.close(refused.code, refused.reason)
    except WebSocketDisconnect:
        pass
    finally:
        CONNECTED.dec()


async def _post_chat(
    websocket: WebSocket, watch: Watch, principal: Principal, text: object
) -> None:
    """Post for the viewer; the message itself comes back to everyone as `chat.posted`."""
    try:
        status, body, headers = await gateway_of(websocket.app).upstream.send_json(
            "POST", "chat", "/api/live/chat",
            body={"stream_id": watch.stream_id, "message": text}, token=principal.token,
        )  # fmt: skip
    except HTTPException as error:
        watch.send(_error(str(error.detail), error.status_code))
        return
    if status == 202:
        watch.send(text_frame(orjson.dumps({"type": "chat.held", "data": body})))
    elif status >= 400:
        detail = body.get("detail") if isinstance(body, dict) else None
        data: dict[str, Any] = {"status": status, "detail": detail or "refused"}
        if retry_after := headers.get("retry-after"):
            data["retry_after"] = int(retry_after)
        watch.send(text_frame(orjson.dumps({"type": "error", "data": data})))


async def _handle_client_frame(
    websocket: WebSocket, watch: Watch, principal: Principal | None
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
        watch.send(PONG)
    elif kind == "chat.post":
        if principal is None:
            watch.send(_error("sign in to chat", 401))
        else:
            await _post_chat(websocket, watch, principal, message.get("message"))
    else:
        watch.send(_error("expected a JSON frame of type ping or chat.post", 400))
