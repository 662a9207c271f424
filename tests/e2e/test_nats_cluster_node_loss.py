"""A 3-node NATS cluster that loses a node, then the live stream's leader, during a live: the
whole system (its own schemas, stream, subjects and keys) and a second gateway run on the cluster
with the event stream at 3 replicas; viewers on both gateways, chat and featured products go on,
and every viewer gets every event exactly once, in order.

A viewer the gateway drops comes back with ?since=<last seq>, as a client does; what it receives
over all its connections must still hold each event once."""

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from chassis.auth import issue_token
from tests.conftest import auth, eventually, on_air
from tests.support.nats_cluster import NatsCluster, running_cluster
from tests.support.system import isolated, migrated_system
from vitrine.system import System, free_port

VIEWERS_PER_GATEWAY = 3
MESSAGES_PER_ROUND = 4
TRACKED = ("chat.posted", "product.featured")


@dataclass
class Clustered:
    nodes: NatsCluster
    system: System
    second: System  # one more gateway, on its own port
    env: dict[str, Any]


@pytest.fixture
async def clustered(env: dict, tmp_path: Path) -> AsyncIterator[Clustered]:
    async with running_cluster(tmp_path / "nats") as nodes:
        settings = isolated(env, "r3", nats_url=nodes.urls, jetstream_replicas=3)
        system = await migrated_system(settings, log_dir=tmp_path / "logs")
        second = System(
            env=system.env,
            ports={**system.ports, "gateway": free_port()},
            log_dir=tmp_path / "second-gateway",
        )
        try:
            await asyncio.to_thread(system.start)
            await asyncio.to_thread(second.start, "gateway")
            yield Clustered(nodes, system, second, settings)
        finally:
            await asyncio.to_thread(second.stop)
            await asyncio.to_thread(system.stop)


@dataclass
class Reader:
    """A viewer that reconnects with ?since=<last seq> whenever its socket goes away."""

    url: str
    frames: list[dict[str, Any]] = field(default_factory=list)  # every frame with a seq
    last_seq: int | None = None
    connections: int = 0
    # (since, the snapshot's seq): resumes answered with a snapshot instead of the events missed
    snapshot_resumes: list[tuple[int, int]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            query = "" if self.last_seq is None else f"?since={self.last_seq}"
            with contextlib.suppress(WebSocketException, InvalidHandshake, OSError, TimeoutError):
                async with connect(self.url + query, max_size=2**22, open_timeout=30) as socket:
                    self.connections += 1
                    async for raw in socket:
                        self._take(json.loads(raw))
            await asyncio.sleep(0.5)

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "snapshot":
            if self.last_seq is not None:
                self.snapshot_resumes.append((self.last_seq, frame["seq"]))
            self.last_seq = frame["seq"]
        elif "seq" in frame:
            self.frames.append(frame)
            self.last_seq = frame["seq"]

    def tracked(self) -> list[tuple[str, str]]:
        return [_key(frame) for frame in self.frames if frame["type"] in TRACKED]


def _key(frame: dict[str, Any]) -> tuple[str, str]:
    data = frame["data"]
    if frame["type"] == "chat.posted":
        return "chat.posted", str(data["message"]["id"])
    return "product.featured", str(data["product"]["product_id"])


async def _retrying(send, *, ok: int) -> httpx.Response:
    """A write as a client makes it: a 503 (the bus electing a leader) is tried again."""
    for _ in range(60):
        answer = await send()
        if answer.status_code != 503:
            break
        await asyncio.sleep(1)
    assert answer.status_code == ok, answer.text
    return answer


class Producer:
    """Chat messages (each from a user of its own: the chat's rate limit is per user) and products
    featured, through the gateway; what it made, as viewers are to see it."""

    def __init__(self, gateway: httpx.AsyncClient, admin: dict, live_id: str, secret: str) -> None:
        self.gateway, self.admin, self.live_id, self.secret = gateway, admin, live_id, secret
        self.expected: list[tuple[str, str]] = []
        self.count = 0

    async def round(self) -> None:
        for _ in range(MESSAGES_PER_ROUND):
            self.count += 1
            name = f"Viewer {self.count}"
            user = issue_token(secret=self.secret, user_id=f"r3-{self.count}", name=name)
            posted = await _retrying(
                lambda user=user: self.gateway.post(
                    "/api/live/chat",
                    json={"stream_id": self.live_id, "message": f"message {self.count}"},
                    headers=auth(user),
                ),
                ok=201,
            )
            self.expected.append(("chat.posted", posted.json()["id"]))
        item = {"name": f"Item {self.count}", "price": "10.00", "currency": "EUR", "stock": 10}
        product = await _retrying(
            lambda: self.gateway.post("/api/catalog/products", json=item, headers=self.admin),
            ok=201,
        )
        product_id = product.json()["id"]
        await _retrying(
            lambda: self.gateway.post(
                f"/api/live/streams/{self.live_id}/products",
                json={"product_id": product_id, "is_featured": True},
                headers=self.admin,
            ),
            ok=201,
        )
        self.expected.append(("product.featured", product_id))


async def _stream_leader(nc: nats.NATS, stream: str) -> str | None:
    try:
        info = await nc.jetstream(timeout=5).stream_info(stream)
    except Exception:
        return None
    return info.cluster.leader if info.cluster is not None else None


async def _all_replicas_current(nc: nats.NATS, stream: str) -> bool:
    try:
        info = await nc.jetstream(timeout=5).stream_info(stream)
    except Exception:
        return False
    replicas = (info.cluster.replicas or []) if info.cluster is not None else []
    return (
        info.cluster is not None
        and info.cluster.leader is not None
        and len(replicas) == 2
        and all(peer.current and not peer.offline for peer in replicas)
    )


@pytest.mark.timeout(600)
async def test_viewers_on_two_gateways_get_every_event_once_while_nodes_and_the_leader_die(
    clustered: Clustered, tokens: dict[str, str]
) -> None:
    system, nodes, stream = clustered.system, clustered.nodes, clustered.env["jetstream_stream"]
    admin = auth(tokens["admin"])
    readers: list[Reader] = []
    tasks: list[asyncio.Task[None]] = []
    nc = await nats.connect(nodes.client_urls, max_reconnect_attempts=-1)
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        try:
            created = await _retrying(
                lambda: gateway.post("/api/live/streams", json={"title": "R3"}, headers=admin),
                ok=201,
            )
            live_id = created.json()["id"]
            await on_air(gateway, admin, live_id)

            async def chat_knows_it() -> bool:
                return (await gateway.get(f"/api/live/streams/{live_id}/chat")).status_code == 200

            await eventually(chat_knows_it, timeout=60, interval=0.5)
            for running in (system, clustered.second):
                url = running.url("gateway").replace("http://", "ws://") + f"/ws/live/{live_id}"
                readers += [Reader(url) for _ in range(VIEWERS_PER_GATEWAY)]
            tasks = [asyncio.create_task(reader.run()) for reader in readers]
            await eventually(
                lambda: all(r.last_seq is not None for r in readers), timeout=60, interval=0.2
            )
            producer = Producer(gateway, admin, live_id, clustered.env["jwt_secret"])

            def everyone_has_it_all() -> bool:
                return all(len(r.tracked()) >= len(producer.expected) for r in readers)

            await producer.round()
            await eventually(everyone_has_it_all, timeout=60, interval=0.2)

            # A node that does not lead the live stream dies; the system goes on on the others.
            leader = await eventually(lambda: _stream_leader(nc, stream), timeout=60)
            follower = next(name for name in nodes.names if name != leader)
            nodes.kill(follower)
            await producer.round()
            await producer.round()
            await eventually(everyone_has_it_all, timeout=90, interval=0.2)

            # Back, caught up (a quorum of two again after the next kill), then the leader dies.
            nodes.start(follower)
            await eventually(lambda: _all_replicas_current(nc, stream), timeout=90, interval=0.5)
            leader = await eventually(lambda: _stream_leader(nc, stream), timeout=60)
            nodes.kill(leader)
            await producer.round()
            await producer.round()
            await eventually(everyone_has_it_all, timeout=120, interval=0.2)
            new_leader = await eventually(lambda: _stream_leader(nc, stream), timeout=60)
            assert new_leader != leader

            await asyncio.sleep(3)  # room for a late duplicate to show itself
            for reader in readers:
                seqs = [frame["seq"] for frame in reader.frames]
                assert seqs == sorted(set(seqs)), (reader.url, seqs)
                # Each service's outbox publishes on its own: the order across them is free.
                received = Counter(reader.tracked())
                assert received == Counter(producer.expected), (reader.url, reader.connections)
                assert set(received.values()) == {1}
                assert reader.snapshot_resumes == [], reader.snapshot_resumes
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()
