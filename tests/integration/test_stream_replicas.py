"""JETSTREAM_REPLICAS: the event stream (and its dead letters) on every node of a 3-node NATS
cluster of the test's own, on loopback; an existing stream is raised, never shrunk by a client
without the setting; a single server refuses 3."""

import asyncio
import secrets

import nats
import pytest
from nats.js.errors import APIError

from chassis import bus as chassis_bus
from chassis.bus import BusProvider, ensure_stream
from chassis.dead_letters import dead_letter_stream, ensure_dead_letter_stream
from tests.conftest import eventually
from tests.support.nats_cluster import cluster  # noqa: F401 (a fixture)


def _name() -> str:
    return f"REPLICAS_{secrets.token_hex(3)}"


async def test_a_stream_created_with_3_replicas_and_its_dead_letters_live_on_3_nodes(
    cluster,  # noqa: F811
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
    cluster,  # noqa: F811
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
