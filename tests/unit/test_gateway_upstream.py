"""The gateway's client to the services: a service's own answer goes back as it is; when the
service gives none, the gateway says whose failure it is and what happened."""

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from fastapi import FastAPI, HTTPException
from starlette.requests import Request

from chassis.web import create_web_app
from services.gateway.upstream import Upstream
from vitrine.system import free_port


@contextlib.asynccontextmanager
async def raw_server(behaviour: str) -> AsyncIterator[int]:
    """A TCP server that reads a request, then stays silent or hangs up without an answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if behaviour == "silent":
            await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _request(path: str, method: str = "GET") -> Request:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": []}  # fmt: skip
    return Request(scope, receive)


async def test_a_service_nothing_listens_for_is_503_naming_it_with_retry_after() -> None:
    upstream = Upstream(services={"chat": f"http://127.0.0.1:{free_port()}"}, timeout_s=2)
    with pytest.raises(HTTPException) as raised:
        await upstream.get_json("chat", "/api/live/chat")
    assert raised.value.status_code == 503
    assert raised.value.detail == "the chat service is unavailable"
    assert raised.value.headers == {"Retry-After": "2"}
    await upstream.close()


async def test_a_service_that_does_not_answer_in_time_is_504_naming_it() -> None:
    async with raw_server("silent") as port:
        upstream = Upstream(services={"streams": f"http://127.0.0.1:{port}"}, timeout_s=0.5)
        with pytest.raises(HTTPException) as raised:
            await upstream.send_json("POST", "streams", "/api/live/streams", body={})
        await upstream.close()
    assert raised.value.status_code == 504
    assert raised.value.detail == "the streams service did not answer within 0.5 s"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_service_hanging_up_without_an_answer_is_502_naming_it(method: str) -> None:
    async with raw_server("hang up") as port:
        upstream = Upstream(services={"products": f"http://127.0.0.1:{port}"}, timeout_s=2)
        with pytest.raises(HTTPException) as raised:
            await upstream.send_json(method, "products", "/api/live/cart", body=None)
        await upstream.close()
    assert raised.value.status_code == 502
    assert raised.value.detail == "the products service closed the connection without an answer"


async def test_a_path_with_a_control_character_is_404_and_never_sent() -> None:
    upstream = Upstream(services={"chat": f"http://127.0.0.1:{free_port()}"}, timeout_s=2)
    with pytest.raises(HTTPException) as raised:
        await upstream.forward(_request("/api/live/chat/\x06"), "chat")
    assert raised.value.status_code == 404
    await upstream.close()


# --- against a service served by uvicorn as `vitrine serve` serves it ----------------------------


def _service() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_web_app(service="test", lifespan=lifespan, max_body_bytes=1000)

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.get("/busy")
    async def busy() -> None:
        raise HTTPException(503, "the database is unavailable", {"Retry-After": "5"})

    return app


@pytest.fixture(scope="module")
def service() -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_service(), port=port, log_level="critical", timeout_keep_alive=30)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


async def test_a_services_own_error_goes_back_as_the_service_gave_it(service: int) -> None:
    upstream = Upstream(services={"chat": f"http://127.0.0.1:{service}"}, timeout_s=5)
    answer = await upstream.forward(_request("/busy"), "chat")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert b"the database is unavailable" in answer.body
    status, body = await upstream.get_json("chat", "/bug")
    assert (status, body) == (500, {"detail": "internal error"})
    await upstream.close()


def test_a_service_keeps_the_connection_open_after_a_500(service: int) -> None:
    """Closing it would turn the gateway's next request on it into "service unavailable"."""
    with socket.create_connection(("127.0.0.1", service), timeout=5) as conn:
        pipelined = b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        conn.sendall(pipelined)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2:
            chunk = conn.recv(65536)
            assert chunk, f"the service hung up after: {received!r}"
            received += chunk
    assert received.startswith(b"HTTP/1.1 500")
    assert b"HTTP/1.1 200" in received
