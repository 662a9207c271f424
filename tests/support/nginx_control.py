"""A local stand-in for nginx-rtmp's control module (`rtmp_control drop`), as deploy/nginx-rtmp's
nginx.conf serves it: `GET /control/drop/publisher?app=&name=` answers how many publishers it
dropped ("0" or "1"), 403 without the callback secret in `X-Vitrine-Rtmp-Secret`.
tests/e2e/test_video_nginx_rtmp.py runs the real one."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class ControlStandIn:
    def __init__(self, *, secret: str) -> None:
        self.secret = secret
        self.publishing: set[tuple[str, str]] = set()  # (app, name) an encoder publishes to
        self.drops: list[dict[str, str]] = []
        self.fail_with: int | None = None  # answer every call with this status
        handler = type("Handler", (_Handler,), {"control": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/control"

    def __enter__(self) -> "ControlStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    control: ControlStandIn

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if self.headers.get("X-Vitrine-Rtmp-Secret") != self.control.secret:
            return self._answer(403, "<html>403 Forbidden</html>")
        if self.control.fail_with is not None:
            return self._answer(self.control.fail_with, "<html>error</html>")
        if url.path != "/control/drop/publisher":
            return self._answer(404, "<html>404 Not Found</html>")
        args = {name: values[0] for name, values in parse_qs(url.query).items()}
        self.control.drops.append(args)
        stream = (args.get("app", ""), args.get("name", ""))
        if stream not in self.control.publishing:
            return self._answer(400, "Live stream not found")
        self.control.publishing.discard(stream)
        return self._answer(200, "1")
