"""A local stand-in for Restream's API, in Restream's JSON format: `GET /v2/user/streamKey` with an
OAuth bearer token (`{"streamKey": "re_…", "srtUrl": "srt://…"}`, `401` once the token has
expired) and `POST /oauth/token` refreshing a token pair (client id and secret in HTTP Basic; the
previous pair stops working at once, as Restream does)."""

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class RestreamStandIn:
    def __init__(self, *, access_token: str, refresh_token: str, client: tuple[str, str]) -> None:
        self.access_token: str | None = access_token
        self.refresh_token = refresh_token
        self.client = "Basic " + base64.b64encode(":".join(client).encode()).decode()
        self.stream_key = ""
        self.regenerate_key()
        self.refreshes = 0
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"restream": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def regenerate_key(self) -> str:
        """What the account owner does in Restream's dashboard."""
        self.stream_key = f"re_{secrets.randbelow(10**7)}_{secrets.token_hex(10)}"
        return self.stream_key

    def expire_access_token(self) -> None:
        """An hour has passed."""
        self.access_token = None

    def refresh(self, refresh_token: str) -> dict | None:
        with self.lock:
            if refresh_token != self.refresh_token:
                return None
            self.refreshes += 1
            self.access_token = f"access-{secrets.token_hex(12)}"
            self.refresh_token = f"refresh-{secrets.token_hex(12)}"
            return {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "stream.read",
            }

    def __enter__(self) -> "RestreamStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    restream: RestreamStandIn

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._answer(status, {"error": {"statusCode": status, "message": message}})

    def do_GET(self) -> None:
        restream = self.restream
        token = restream.access_token
        if self.path != "/v2/user/streamKey":
            self._error(404, "Not Found")
        elif token is None or self.headers.get("Authorization") != f"Bearer {token}":
            self._error(401, "Invalid token")
        else:
            key = restream.stream_key
            srt = f"srt://live.restream.io:2010?streamid=srt_x&passphrase={key}"
            self._answer(200, {"streamKey": key, "srtUrl": srt})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.path != "/oauth/token":
            self._error(404, "Not Found")
        elif self.headers.get("Authorization") != self.restream.client:
            self._error(401, "Invalid client")
        elif form.get("grant_type") != ["refresh_token"]:
            self._error(400, "Unsupported grant type")
        else:
            tokens = self.restream.refresh(form.get("refresh_token", [""])[0])
            if tokens is None:
                self._error(400, "Invalid refresh token")
            else:
                self._answer(200, tokens)
