"""vitrine.client, the external consumers' feed, on the real NATS JetStream server: a stream and
subject root of this test's own, so nothing else of the run is in it."""

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js.api import DeliverPolicy

from chassis import bus as chassis_bus
from contracts import Envelope, new_envelope, subject_for
from contracts.products import ProductClicked, ProductRemoved, ProductUnfeatured
from vitrine.client import Event, EventFeed


@pytest.fixture
async def world(nats_url: str) -> AsyncIterator[tuple[chassis_bus.Bus, str]]:
    tag = uuid.uuid4().hex[:8]
    root, stream = f"c{tag}.live", f"CLIENT_{tag}"
    bus = await chassis_bus.connect(nats_url, name="client-test", stream=stream, subject_root=root)
    yield bus, root
    await bus.js.delete_stream(stream)
    await bus.nc.close()


async def publish(bus: chassis_bus.Bus, root: str, live: uuid.UUID, payload, *, event_id=None):
    envelope = new_envelope(payload, stream_id=live, producer="products")
    if event_id is not None:
        envelope = envelope.model_copy(update={"id": event_id})
    await chassis_bus.publish_event(
        bus,
        subject=subject_for(live, envelope.type, root=root),
        body=envelope.model_dump_json().encode(),
        event_id=envelope.id,
    )
    return envelope


async def take(feed: EventFeed, count: int, *, ack: bool = True) -> list[Event]:
    """The next `count` events, acknowledged unless told otherwise."""
    got: list[Event] = []

    async def read() -> None:
        async for event in feed:
            got.append(event)
            if ack:
                await event.ack()
            if len(got) == count:
                return

    await asyncio.wait_for(read(), timeout=20)
    return got


async def nothing_more(feed: EventFeed, *, wait_s: float = 1.5) -> None:
    with contextlib.suppress(TimeoutError):
        extra = await asyncio.wait_for(take(feed, 1), timeout=wait_s)
        pytest.fail(f"unexpected {extra}")


def connect(bus: chassis_bus.Bus, root: str, durable: str, **options) -> object:
    return EventFeed.connect(
        bus.nc.connected_url.geturl(),  # type: ignore[union-attr]
        durable=durable,
        subject_root=root,
        stream=bus.stream,
        wait_s=0.5,
        **options,
    )


async def test_a_durable_feed_resumes_where_it_stopped_in_order_typed_and_once(world) -> None:
    bus, root = world
    live = uuid.uuid4()
    sent = [
        await publish(bus, root, live, ProductRemoved(product_id=uuid.uuid4())) for _ in range(4)
    ]
    # A producer's retry under the same id is stored once.
    await publish(bus, root, live, ProductRemoved(product_id=uuid.uuid4()), event_id=sent[-1].id)

    feed = await connect(bus, root, "warehouse", in_order=True, ack_wait_s=1.0)
    first = await take(feed, 2)
    unacked = await take(feed, 1, ack=False)  # the process "dies" before storing it
    await feed.close()
    later = await publish(bus, root, live, ProductUnfeatured(product_id=uuid.uuid4()))

    async with await connect(bus, root, "warehouse", ack_wait_s=1.0) as again:
        rest = await take(again, 3)
        await nothing_more(again)

    assert [e.envelope.id for e in first + rest] == [*(s.id for s in sent), later.id]
    assert unacked[0].envelope.id == rest[0].envelope.id == sent[2].id
    assert rest[0].deliveries == 2
    assert isinstance(rest[-1].payload, ProductUnfeatured)
    assert all(isinstance(e.payload, ProductRemoved) for e in first + rest[:-1])
    seqs = [e.seq for e in first + rest]
    assert seqs == sorted(seqs)


async def test_a_feed_without_strict_order_gets_a_redelivery_after_the_others(world) -> None:
    bus, root = world
    live = uuid.uuid4()
    removals = [ProductRemoved(product_id=uuid.uuid4()) for _ in range(3)]
    sent = [await publish(bus, root, live, removal) for removal in removals]
    async with await connect(bus, root, "fast", ack_wait_s=1.0) as feed:
        (dropped,) = await take(feed, 1, ack=False)
        rest = await take(feed, 3)
        await nothing_more(feed)
    assert dropped.envelope.id == sent[0].id
    assert [e.envelope.id for e in rest] == [sent[1].id, sent[2].id, sent[0].id]
    assert rest[-1].deliveries == 2


async def test_a_feed_reads_one_live_or_the_types_asked_for(world) -> None:
    bus, root = world
    mine, other = uuid.uuid4(), uuid.uuid4()
    clicked = ProductClicked(product_id=uuid.uuid4(), session_id="s-1")
    for live in (mine, other):
        await publish(bus, root, live, ProductRemoved(product_id=uuid.uuid4()))
        await publish(bus, root, live, clicked)
        await publish(bus, root, live, ProductUnfeatured(product_id=uuid.uuid4()))

    async with await connect(bus, root, "one-live", stream_id=mine) as feed:
        assert {e.envelope.stream_id for e in await take(feed, 3)} == {mine}
        await nothing_more(feed)
    async with await connect(bus, root, "clicks", types=["product.clicked"]) as feed:
        got = await take(feed, 2)
        assert {(e.envelope.stream_id, e.envelope.type) for e in got} == {
            (mine, "product.clicked"),
            (other, "product.clicked"),
        }
        await nothing_more(feed)
    # Two types: both lives' removals and clicks, the rest acknowledged unseen.
    async with await connect(
        bus, root, "two", types=["product.removed", "product.clicked"]
    ) as feed:
        got = await take(feed, 4)
        assert (
            sorted(e.envelope.type for e in got)
            == ["product.clicked"] * 2 + ["product.removed"] * 2
        )
        await nothing_more(feed)
    with pytest.raises(ValueError, match="new durable name"):
        await connect(bus, root, "clicks", types=["product.removed"])


async def test_a_new_durable_may_start_from_now_and_unknown_events_still_come(world) -> None:
    bus, root = world
    live = uuid.uuid4()
    await publish(bus, root, live, ProductRemoved(product_id=uuid.uuid4()))
    async with await connect(bus, root, "from-now", start=DeliverPolicy.NEW) as feed:
        # Not an envelope: dropped for good. A type from a newer producer: there, untyped.
        await bus.js.publish(subject_for(live, "product.removed", root=root), b"{not json")
        removed = ProductRemoved(product_id=uuid.uuid4())
        newer = new_envelope(removed, stream_id=live, producer="products")
        newer = newer.model_copy(update={"type": "poll.opened"})
        await chassis_bus.publish_event(
            bus,
            subject=subject_for(live, newer.type, root=root),
            body=newer.model_dump_json().encode(),
            event_id=newer.id,
        )
        (event,) = await take(feed, 1)
        assert event.envelope.id == newer.id and event.payload is None
        assert event.envelope.data == newer.data
        await nothing_more(feed)


async def test_a_feed_is_a_durable_on_the_server_that_outlives_it(world, nats_url: str) -> None:
    bus, root = world
    async with await connect(bus, root, "named", name="warehouse-loader") as feed:
        assert feed.durable == "named"
    nc = await nats.connect(nats_url)
    info = await nc.jetstream().consumer_info(bus.stream, "named")
    assert info.config.filter_subject == f"{root}.*.>"
    await nc.close()


async def test_vitrine_events_prints_each_event_as_a_json_line(world, nats_url: str) -> None:
    bus, root = world
    live = uuid.uuid4()
    sent = await publish(bus, root, live, ProductRemoved(product_id=uuid.uuid4()))
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vitrine.cli", "events", "--durable", "cli", "--live", str(live),
        env={**os.environ, "NATS_URL": nats_url, "JETSTREAM_STREAM": bus.stream,
             "SUBJECT_ROOT": root},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert command.stdout is not None
        line = await asyncio.wait_for(command.stdout.readline(), timeout=30)
    finally:
        command.terminate()
        await command.wait()
    assert Envelope.model_validate_json(line) == sent
