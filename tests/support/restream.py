"""A local stand-in for Restream's API: `GET /v2/user/streamKey` with an OAuth bearer token, in
Restream's JSON format (`{"streamKey": "re_…", "srtUrl": "srt://…"}`, `401` for a bad token)."""

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RestreamStandIn:
    def __init__(self, *, access_token: str) -> None:
        self.access_token = access_token
        self.stream_key = ""
        self.regenerate_key()
        self.calls = 0
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

    def do_GET(self) -> None:
        restream = self.restream
        restream.calls += 1
        if self.path != "/v2/user/streamKey":
            self._answer(404, {"error": {"statusCode": 404, "message": "Not Found"}})
        elif self.headers.get("Authorization") != f"Bearer {restream.access_token}":
            self._answer(401, {"error": {"statusCode": 401, "message": "Invalid token"}})
        else:
            self._answer(
                200,
                {
                    "streamKey": restream.stream_key,
                    "srtUrl": f"srt://live.restream.io:2010?streamid=srt_x&passphrase={restream.stream_key}",
                },
            )
