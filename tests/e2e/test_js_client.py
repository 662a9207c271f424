"""The JavaScript SDK's own tests (`node --test` in clients/js/test) against the real system.

Node is given the gateway's address and tokens, and a small control server of this test through
which it has services stopped, started or restarted for real (the gateway process under its
websocket, the streams service to make the gateway answer 1013)."""

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chassis.settings import INSECURE_JWT_SECRET
from vitrine.system import System

SDK = Path(__file__).parents[2] / "clients" / "js"
CONTROLLED = ("gateway", "streams")
NODE_TIMEOUT_S = 300


@contextmanager
def control_server(system: System) -> Iterator[str]:
    """`POST /stop/<service>`, `/start/<service>`, `/restart/<service>` on `system`; every
    controlled service is running again afterwards, whatever node did."""
    lock = threading.Lock()  # one change at a time: System is not meant for concurrent use

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            action, _, name = self.path.strip("/").partition("/")
            if name not in CONTROLLED or action not in ("stop", "start", "restart"):
                self.send_error(404, f"no such action: {self.path}")
                return
            with lock:
                if action in ("stop", "restart"):
                    system.stop(name)
                if action in ("start", "restart"):
                    system.start(name)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # node's own report says what happened

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        with lock:
            missing = [name for name in CONTROLLED if name not in system.processes]
            if missing:
                system.start(*missing)


@pytest.mark.timeout(NODE_TIMEOUT_S + 60)  # the system's start, then node's own run
async def test_the_js_client_passes_its_tests_against_the_real_gateway(system, tokens):
    node = shutil.which("node")
    assert node, "node (≥ 20) is needed to test clients/js: install Node.js"
    with control_server(system) as control_url:
        process = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",  # Node 20's WebSocket is behind a flag (default in 22)
            "--test",
            "--test-concurrency=1",  # restart.test.js stops the gateway the others use
            "--test-reporter=spec",
            "test/",
            cwd=SDK,
            env={
                **os.environ,
                "VITRINE_GATEWAY_URL": system.url("gateway"),
                "VITRINE_CHAT_URL": system.url("chat"),
                "VITRINE_CONTROL_URL": control_url,
                "VITRINE_ADMIN_TOKEN": tokens["admin"],
                "VITRINE_USER_TOKEN": tokens["user"],
                "VITRINE_JWT_SECRET": INSECURE_JWT_SECRET,  # the run's: node signs in new users
                "NO_COLOR": "1",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            took = f"node --test took over {NODE_TIMEOUT_S} s:\n{output.decode()}"
            raise AssertionError(took) from None
    assert process.returncode == 0, f"node --test failed:\n{output.decode()}"


async def test_the_gateway_serves_the_sdk_to_its_pages_as_it_is(gateway):
    for name in ("index.js", "watch.js", "http.js", "livestate.js", "backoff.js"):
        served = await gateway.get(f"/static/sdk/{name}")
        assert served.status_code == 200, name
        assert "javascript" in served.headers["content-type"]
        assert served.text == (SDK / "src" / name).read_text(encoding="utf-8")
    assert (await gateway.get("/static/js/viewer.js")).status_code == 200  # still its own
