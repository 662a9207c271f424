"""Log lines name their request, trace and live (chassis/logs.py), in JSON or text; the gateway
passes the request's id and trace on to the service it asks (services/gateway/upstream.py)."""

import contextlib
import io
import json
import logging
import secrets

import httpx
import pytest
from fastapi import Request

from chassis import logs
from chassis.web import create_web_app
from services.gateway.upstream import Upstream

log = logging.getLogger("vitrine.test")


@contextlib.asynccontextmanager
async def _nothing(app):
    yield


def service_app():
    app = create_web_app(service="probe", lifespan=_nothing, max_body_bytes=1000)

    @app.get("/probe")
    async def probe(request: Request) -> dict:
        log.warning("probed", extra={"stream_id": "live-7"})
        return {"request_id": request.headers.get("x-request-id"),
                "traceparent": request.headers.get("traceparent")}  # fmt: skip

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def lines():
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.configure("text")


async def test_a_json_line_names_the_request_trace_and_live(lines) -> None:
    trace_id = secrets.token_hex(16)
    transport = httpx.ASGITransport(app=service_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        answer = await client.get(
            "/probe",
            headers={"X-Request-ID": "req-42", "traceparent": f"00-{trace_id}-{'1' * 16}-01"},
        )
        made = await client.get("/probe", headers={"X-Request-ID": "not an id, <script>"})
        failed = await client.get("/boom")
    assert answer.headers["x-request-id"] == "req-42"
    assert (
        made.headers["x-request-id"] != "not an id, <script>"
        and len(made.headers["x-request-id"]) == 32
    )
    first, second, bug = [line for line in lines() if line["logger"] != "httpx"]
    assert first["message"] == "probed" and first["level"] == "WARNING"
    assert (first["request_id"], first["trace_id"], first["stream_id"]) == (
        "req-42", trace_id, "live-7",
    )  # fmt: skip
    assert second["request_id"] == made.headers["x-request-id"]
    assert failed.status_code == 500 and failed.headers["x-request-id"] == bug["request_id"]
    assert "RuntimeError: a bug" in bug["error"]


def test_a_text_line_says_the_same_in_one_line() -> None:
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    token = logs.request_id.set("req-9")
    try:
        log.warning("hello", extra={"stream_id": "live-1"})
    finally:
        logs.request_id.reset(token)
        logs.configure("text")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("vitrine.test WARNING hello request_id=req-9 stream_id=live-1")


async def test_the_gateway_passes_the_request_id_and_trace_to_the_service(lines) -> None:
    gateway = create_web_app(service="gateway-probe", lifespan=_nothing, max_body_bytes=1000)
    upstream = Upstream(
        services={"probe": "http://probe"},
        timeout_s=5,
        transport=httpx.ASGITransport(app=service_app()),
    )

    @gateway.get("/probe")
    async def probe(request: Request):
        return await upstream.forward(request, "probe")

    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/probe", headers={"X-Request-ID": "from-the-page"})
    await upstream.close()
    assert answer.json()["request_id"] == "from-the-page"
    assert answer.json()["traceparent"]  # the gateway's span, continued by the service
    (line,) = [line for line in lines() if line["message"] == "probed"]
    assert line["request_id"] == "from-the-page"
    assert line["trace_id"] == answer.json()["traceparent"].split("-")[1]
