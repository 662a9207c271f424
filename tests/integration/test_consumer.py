"""Durable consumers on real JetStream and PostgreSQL: each event handled once, whatever happens."""

import asyncio
import uuid

import sqlalchemy as sa

from chassis.consumer import Redelivery
from tests.conftest import eventually
from tests.support.consumer_world import (
    consumer,
    counting_handler,
    pending,
    publish,
    rows,
    running,
)


async def test_an_event_delivered_twice_is_handled_once(world):
    calls: list = []
    stream_id = uuid.uuid4()
    envelope = await publish(world, stream_id)
    # The same event again under another message id, as a re-publish outside the window would.
    await publish(
        world, stream_id, msg_id="another-delivery", raw=envelope.model_dump_json().encode()
    )
    async with running(consumer(world, counting_handler(world, calls))):
        await eventually(lambda: rows(world))
        await asyncio.sleep(0.5)
    assert calls == [envelope.id]
    assert await rows(world) == 1


async def test_a_restarted_consumer_resumes_where_it_stopped(world):
    calls: list = []
    first = [await publish(world, uuid.uuid4()) for _ in range(3)]
    async with running(consumer(world, counting_handler(world, calls))) as c:
        await eventually(lambda: c.handled == 3)
    later = [await publish(world, uuid.uuid4()) for _ in range(2)]
    async with running(consumer(world, counting_handler(world, calls))) as c:
        await eventually(lambda: c.handled == 2)
        await asyncio.sleep(0.3)
    # Each once; the two later ones may come in either order if the first consumer's last pull
    # request took one of them (it is redelivered after the ack wait).
    assert calls[:3] == [e.id for e in first]
    assert sorted(calls[3:]) == sorted(e.id for e in later)


async def test_a_failing_handler_gets_the_event_again_and_nothing_half_done_stays(world):
    calls: list = []
    failures = [True]

    async def flaky(session, envelope):
        await session.execute(sa.insert(world["seen"]).values(stream_id="partial", n=1))
        if failures.pop(0) if failures else False:
            raise RuntimeError("database hiccup")
        calls.append(envelope.id)

    envelope = await publish(world, uuid.uuid4())
    async with running(consumer(world, flaky, redelivery=Redelivery((0.1,)))) as c:
        await eventually(lambda: c.handled == 1)
    assert calls == [envelope.id]
    assert await rows(world) == 1  # the failed attempt's write was rolled back


async def test_a_failing_event_rolls_its_batch_back_and_each_event_goes_through_once(world):
    calls: list = []
    failing: set = set()
    count = counting_handler(world, calls)
    batches: list = []

    async def handler(session, envelope):
        await count(session, envelope)
        if envelope.id in failing:
            failing.discard(envelope.id)  # fails once, then goes through
            raise RuntimeError("database hiccup")

    first = [await publish(world, uuid.uuid4()) for _ in range(3)]
    flaky = await publish(world, uuid.uuid4())
    failing.add(flaky.id)
    # A duplicate inside the same batch is recorded once as well.
    await publish(world, uuid.uuid4(), msg_id="again", raw=first[0].model_dump_json().encode())
    watched = consumer(world, handler, batched=True, redelivery=Redelivery((0.1,)))
    batch_of = watched._handle_batch

    async def spy(messages):
        batches.append(len(messages))
        return await batch_of(messages)

    watched._handle_batch = spy  # type: ignore[method-assign]
    async with running(watched) as c:
        await eventually(lambda: c.handled == 4)
        await asyncio.sleep(0.3)
    assert batches[0] == 5  # all five came in one batch, which was rolled back
    assert await rows(world) == 4  # so what it wrote is gone: one row per event
    expected = sorted(e.id for e in [*first, flaky])
    assert sorted(set(calls)) == expected
    async with world["engine"].connect() as conn:
        processed = await conn.execute(sa.select(world["processed"].c.event_id))
        assert sorted(row.event_id for row in processed) == expected


async def test_a_batch_is_committed_at_once_and_a_poison_event_does_not_sink_it(world):
    calls: list = []
    good = [await publish(world, uuid.uuid4()) for _ in range(2)]
    await publish(world, uuid.uuid4(), msg_id="poison-2", raw=b"{not an envelope")
    good += [await publish(world, uuid.uuid4()) for _ in range(2)]
    async with running(consumer(world, counting_handler(world, calls), batched=True)) as c:
        await eventually(lambda: c.handled == 4)
        await asyncio.sleep(0.3)
    assert sorted(calls) == sorted(e.id for e in good)
    async with world["engine"].connect() as conn:
        transactions = await conn.execute(
            sa.select(sa.func.count(sa.distinct(sa.text("xmin::text")))).select_from(world["seen"])
        )
        assert transactions.scalar() == 1  # the four rows share one transaction


async def test_a_batch_takes_its_locks_in_the_given_order(world):
    calls: list = []
    streams = sorted(str(uuid.uuid4()) for _ in range(4))
    for stream_id in reversed(streams):
        await publish(world, uuid.UUID(stream_id))
    ordered = consumer(
        world,
        counting_handler(world, calls),
        batched=True,
        lock_order=lambda envelope: (str(envelope.stream_id),),
    )
    async with running(ordered) as c:
        await eventually(lambda: c.handled == 4)
    async with world["engine"].connect() as conn:
        stream_ids = await conn.execute(sa.select(world["seen"].c.stream_id))
        assert [row.stream_id for row in stream_ids] == streams


async def test_types_a_consumer_does_not_handle_are_acknowledged_untouched(world):
    calls: list = []
    await publish(world, uuid.uuid4())
    only_others = consumer(world, counting_handler(world, calls), only={"stream.updated"})
    async with running(only_others):

        async def acknowledged():
            return await pending(world) == 0

        await eventually(acknowledged)
    assert calls == [] and await rows(world) == 0
    async with world["engine"].connect() as conn:
        processed = await conn.execute(sa.select(sa.func.count()).select_from(world["processed"]))
        assert processed.scalar() == 0  # not even recorded: no transaction at all
