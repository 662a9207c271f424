"""A local stand-in for Mux: its live-stream REST API (as mux-python calls it) and its webhooks.

Answers like api.mux.com: basic auth with the access token, `201 {"data": …}` on create and on
reset-stream-key, `204` on delete, `200 {"data": {}}` on `PUT …/complete` (the recording ends)
and `PUT …/disable` (the encoder is disconnected and refused), `404 {"error": …}` for unknown ids.
`webhook` and `signature` build a body and `Mux-Signature` header the way Mux signs them.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MuxStandIn:
    def __init__(self, *, token_id: str, token_secret: str) -> None:
        self.token = "Basic " + base64.b64encode(f"{token_id}:{token_secret}".encode()).decode()
        self.live_streams: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.fail_next: int | None = None  # answer the next call with this status
        handler = type("Handler", (_Handler,), {"mux": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "MuxStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create(self, body: dict) -> dict:
        stream_id = secrets.token_urlsafe(16)
        live = {
            "id": stream_id,
            "created_at": str(int(time.time())),
            "stream_key": str(uuid.uuid4()),
            "status": "idle",
            "playback_ids": [
                {"id": secrets.token_urlsafe(16), "policy": p}
                for p in body.get("playback_policy", [])
            ],
            "new_asset_settings": body.get("new_asset_settings"),
            "reconnect_window": body.get("reconnect_window", 60),
            "passthrough": body.get("passthrough"),
            "latency_mode": body.get("latency_mode") or "standard",
            "max_continuous_duration": 43200,
        }
        self.live_streams[stream_id] = live
        return live


class _Handler(BaseHTTPRequestHandler):
    mux: MuxStandIn
    PREFIX = "/video/v1/live-streams"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.mux.requests.append((method, self.path, body))
        if self.headers.get("Authorization") != self.mux.token:
            return self._answer(401, {"error": {"type": "unauthorized", "messages": []}})
        if self.mux.fail_next is not None:
            status, self.mux.fail_next = self.mux.fail_next, None
            return self._answer(status, {"error": {"type": "server_error", "messages": []}})
        parts = self.path.removeprefix(self.PREFIX).strip("/").split("/")
        if method == "POST" and parts == [""]:
            return self._answer(201, {"data": self.mux.create(body or {})})
        live = self.mux.live_streams.get(parts[0])
        if live is None:
            return self._answer(404, {"error": {"type": "not_found", "messages": []}})
        if method == "GET" and len(parts) == 1:
            return self._answer(200, {"data": live})
        if method == "DELETE" and len(parts) == 1:
            del self.mux.live_streams[parts[0]]
            return self._answer(204)
        if method == "POST" and parts[1:] == ["reset-stream-key"]:
            live["stream_key"] = str(uuid.uuid4())
            return self._answer(201, {"data": live})
        if method == "PUT" and parts[1:] == ["complete"]:
            live["status"], live["recording_completed"] = "idle", True
            return self._answer(200, {"data": {}})
        if method == "PUT" and parts[1:] == ["disable"]:
            live["status"] = "disabled"
            return self._answer(200, {"data": {}})
        return self._answer(404, {"error": {"type": "not_found", "messages": []}})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def webhook(
    kind: str, data: dict, *, webhook_id: str | None = None, at: datetime | None = None
) -> bytes:
    """A webhook body in Mux's format."""
    object_type = kind.split(".")[1]
    return json.dumps(
        {
            "type": kind,
            "id": webhook_id or str(uuid.uuid4()),
            "created_at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
            "object": {"type": object_type, "id": data.get("id")},
            "environment": {"name": "Production", "id": "env1"},
            "data": data,
            "attempts": [],
            "accessor_source": None,
        }
    ).encode()


def signature(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The `Mux-Signature` header value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
