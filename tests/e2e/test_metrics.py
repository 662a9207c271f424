"""The figures an operator pages on, read from the processes' /metrics while a live runs: the
fan-out's sockets, hubs and frames; the outbox relay's publishes and backlog; the consumers'
deliveries, acks and lag."""

import json

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import auth, eventually
from vitrine.system import System


async def samples(url: str) -> dict[tuple[str, tuple], float]:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_metrics_say_what_the_fan_out_the_relay_and_the_consumers_do(
    gateway: httpx.AsyncClient, system: System, tokens: dict
) -> None:
    admin = auth(tokens["admin"])
    live = (
        await gateway.post("/api/live/streams", json={"title": "Metered"}, headers=admin)
    ).json()
    before = await samples(system.url("gateway"))
    ws_url = system.url("gateway").replace("http://", "ws://") + f"/ws/live/{live['id']}"
    async with websockets.connect(ws_url) as viewer:
        assert json.loads(await viewer.recv())["type"] == "snapshot"
        during = await samples(system.url("gateway"))
        assert value(during, "vitrine_ws_connections") >= 1
        assert value(during, "vitrine_ws_live_hubs") >= 1
        assert value(during, "vitrine_presence_writes_total", outcome="written") >= 1
        await gateway.put(
            f"/api/live/streams/{live['id']}", json={"title": "Metered 2"}, headers=admin
        )
        while json.loads(await viewer.recv())["type"] != "stream.updated":
            pass
        after = await samples(system.url("gateway"))
    assert value(after, "vitrine_ws_frames_sent_total") > value(
        before, "vitrine_ws_frames_sent_total"
    )
    assert value(after, "vitrine_ws_bytes_sent_total") > value(
        before, "vitrine_ws_bytes_sent_total"
    )

    streams = await samples(system.url("streams"))
    assert value(streams, "vitrine_outbox_published_total", service="streams") >= 2
    assert ("vitrine_outbox_oldest_unsent_seconds", (("service", "streams"),)) in streams

    async def products_heard() -> bool:
        found = await samples(system.url("products"))
        return value(found, "vitrine_consumer_acked_total", consumer="products-streams") >= 2

    await eventually(products_heard)
    found = await samples(system.url("products"))
    assert value(found, "vitrine_consumer_delivered_total", consumer="products-streams") >= 2
    assert ("vitrine_consumer_pending", (("consumer", "products-streams"),)) in found
