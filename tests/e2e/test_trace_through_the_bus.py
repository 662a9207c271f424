"""One trace from the admin's click to the viewers' sockets: the services export their spans over
OTLP to a receiver of this test's own, and featuring a product makes one trace of the gateway's
request, its call to products, the products service's request, its relay's publish and the
gateway's fan-out of the event (on a system of its own: own schemas, stream and subjects)."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import auth, eventually
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.system import isolated, migrated_system
from vitrine.system import System


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
async def traced(
    env: dict, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    system = await migrated_system(
        isolated(env, "traced"),
        log_dir=Path(tmp_path_factory.mktemp("traced-logs")),
        extra_env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans exported within moments
        },
    )
    await asyncio.to_thread(system.start)
    yield system
    await asyncio.to_thread(system.stop)


async def test_featuring_a_product_is_one_trace_from_the_request_to_the_fan_out(
    traced: System, receiver: OtlpReceiver, tokens: dict
) -> None:
    admin = auth(tokens["admin"])
    async with httpx.AsyncClient(base_url=traced.url("gateway"), timeout=15) as gateway:
        live = await gateway.post("/api/live/streams", json={"title": "Traced"}, headers=admin)
        live_id = live.json()["id"]
        assert (await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)).is_success
        product = await gateway.post(
            "/api/catalog/products",
            json={"name": "Traced scarf", "price": "20.00", "currency": "EUR", "stock": 5},
            headers=admin,
        )
        assert product.status_code == 201, product.text
        ws_url = traced.url("gateway").replace("http://", "ws://") + f"/ws/live/{live_id}"
        async with websockets.connect(ws_url) as viewer:
            assert json.loads(await viewer.recv())["type"] == "snapshot"
            trace_id = secrets.token_hex(16)
            featured = await gateway.post(
                f"/api/live/streams/{live_id}/products",
                json={"product_id": product.json()["id"], "is_featured": True},
                headers={**admin, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
            )
            assert featured.status_code == 201, featured.text
            while (frame := json.loads(await asyncio.wait_for(viewer.recv(), 10)))["type"] != (
                "product.featured"
            ):
                pass

    def whole() -> bool:
        seen = {(s.service, s.kind, s.name) for s in receiver.of_trace(trace_id)}
        return {
            ("gateway", Span.SPAN_KIND_SERVER), ("gateway", Span.SPAN_KIND_CLIENT),
            ("products", Span.SPAN_KIND_SERVER), ("products", Span.SPAN_KIND_PRODUCER),
            ("gateway", Span.SPAN_KIND_CONSUMER),
        } <= {(service, kind) for service, kind, _ in seen}  # fmt: skip

    await eventually(whole, timeout=20)
    spans = receiver.of_trace(trace_id)
    published = [s for s in spans if s.kind == Span.SPAN_KIND_PRODUCER and s.service == "products"]
    fanned = [s for s in spans if s.kind == Span.SPAN_KIND_CONSUMER and s.service == "gateway"]
    assert any(s.name == "publish product.featured" for s in published)
    # The fan-out continues the relay's span: the event carried it through NATS.
    assert {s.parent_id for s in fanned if s.name == "process product.featured"} <= {
        s.span_id for s in published
    }
    assert frame["data"]["product"]["name"] == "Traced scarf"
    # No span per ASGI message: one server span per request.
    assert not [s for s in spans if s.name.endswith((" http send", " http receive"))]
