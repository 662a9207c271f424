"""JETSTREAM_REPLICAS: the event stream (and its dead letters) on every node of a 3-node NATS
cluster of the test's own, on loopback; an existing stream is raised, never shrunk by a client
without the setting; a single server refuses 3."""

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import APIError

from chassis import bus as chassis_bus
from chassis.bus import BusProvider, ensure_stream
from chassis.dead_letters import dead_letter_stream, ensure_dead_letter_stream
from tests.conftest import eventually
from vitrine import embedded
from vitrine.system import free_port


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[str]:
    """Three nats-server nodes routed to each other; yields the client URLs, comma-separated."""
    clients = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    binary = str(embedded._nats_server_binary())
    nodes = []
    try:
        for i, (client, route) in enumerate(zip(clients, routes, strict=True)):
            others = ",".join(f"nats://127.0.0.1:{r}" for r in routes if r != route)
            store = tmp_path / f"n{i}"
            store.mkdir()
            argv = [binary, "-a", "127.0.0.1", "-p", str(client), "-js", "-sd", str(store),
                    "--server_name", f"n{i}", "--cluster_name", "vitrine-test",
                    "--cluster", f"nats://127.0.0.1:{route}", "--routes", others]  # fmt: skip
            nodes.append(
                embedded._spawn(
                    f"nats-n{i}",
                    argv,
                    port=client,
                    log_path=store / "nats-server.log",
                    ready=functools.partial(embedded._nats_ready, "127.0.0.1", client),
                )
            )
        urls = ",".join(f"nats://127.0.0.1:{port}" for port in clients)
        nc = await nats.connect(urls.split(","))
        try:  # ready once the meta leader places a stream on all three nodes
            await eventually(lambda: _places_3_replicas(nc.jetstream()), timeout=30, interval=0.5)
        finally:
            await nc.close()
        yield urls
    finally:
        for node in nodes:
            node.stop()


async def _places_3_replicas(js: JetStreamContext) -> bool:
    try:
        await js.add_stream(name="PROBE", subjects=["probe.>"], num_replicas=3)
        await js.delete_stream("PROBE")
        return True
    except Exception:
        return False


def _name() -> str:
    return f"REPLICAS_{secrets.token_hex(3)}"


async def test_a_stream_created_with_3_replicas_and_its_dead_letters_live_on_3_nodes(
    cluster,
) -> None:
    stream = _name()
    # NATS_URL may list the cluster's servers, comma-separated.
    bus = BusProvider(cluster, name="t", stream=stream, subject_root=stream.lower(), replicas=3)
    try:
        connected = await bus.get()
        assert connected.replicas == 3
        await ensure_dead_letter_stream(connected.js, stream=stream, replicas=connected.replicas)
        for name in (stream, dead_letter_stream(stream)):

            async def replicated(name: str = name) -> bool:
                info = await connected.js.stream_info(name)
                followers = info.cluster.replicas if info.cluster is not None else None
                return info.config.num_replicas == 3 and len(followers or []) == 2

            await eventually(replicated, timeout=20)
    finally:
        await bus.close()


async def test_an_existing_stream_is_raised_to_3_and_never_shrunk_without_the_setting(
    cluster,
) -> None:
    stream = _name()
    nc = await nats.connect(cluster.split(","))
    try:
        js = nc.jetstream()
        assert await ensure_stream(js, stream=stream, subject_root=stream.lower()) == 1
        assert await ensure_stream(js, stream=stream, subject_root=stream.lower(), replicas=3) == 3
        assert (await js.stream_info(stream)).config.num_replicas == 3
        # A tool that does not set JETSTREAM_REPLICAS leaves it at 3.
        assert await ensure_stream(js, stream=stream, subject_root=stream.lower()) == 3
        await asyncio.sleep(0.2)
        assert (await js.stream_info(stream)).config.num_replicas == 3
        # The dead-letter stream goes the same way (one helper), and follows its size bound.
        dead = dead_letter_stream(stream)
        await ensure_dead_letter_stream(js, stream=stream, max_bytes=2**20)
        assert (await js.stream_info(dead)).config.num_replicas == 1
        await ensure_dead_letter_stream(js, stream=stream, replicas=3, max_bytes=2**21)
        info = await js.stream_info(dead)
        assert (info.config.num_replicas, info.config.max_bytes) == (3, 2**21)
    finally:
        await nc.close()


async def test_a_single_server_refuses_3_replicas(env) -> None:
    stream = _name()
    nc = await nats.connect(env["nats_url"])
    try:
        with pytest.raises(APIError):
            await ensure_stream(nc.jetstream(), stream=stream, subject_root=stream.lower(),
                                replicas=3)  # fmt: skip
    finally:
        await nc.close()


async def test_a_refused_stream_leaves_no_connection_behind(env, monkeypatch) -> None:
    """connect() closes what it opened when the stream cannot be made (or it is cancelled),
    rather than leaving a client reconnecting for ever; it pings every 10 s."""
    opened: list = []
    real_connect = chassis_bus.nats.connect

    async def recording(*args, **kwargs):
        opened.append((client := await real_connect(*args, **kwargs), kwargs))
        return client

    monkeypatch.setattr(chassis_bus.nats, "connect", recording)
    stream = _name()
    bus = BusProvider(env["nats_url"], name="t", stream=stream, subject_root=stream.lower(),
                      replicas=3)  # fmt: skip
    with pytest.raises(APIError):
        await bus.get()
    [(client, options)] = opened
    assert client.is_closed and not bus.connected
    assert (options["ping_interval"], options["max_outstanding_pings"]) == (10.0, 2)
