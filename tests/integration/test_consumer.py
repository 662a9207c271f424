"""Durable consumers on real JetStream and PostgreSQL: each event handled once, whatever happens."""

import asyncio
import contextlib
import secrets
import uuid

import nats
import pytest
import sqlalchemy as sa
from nats.js.errors import NotFoundError

from chassis.bus import BusProvider
from chassis.consumer import EventConsumer, processed_events_table
from chassis.db import create_engine, session_factory
from contracts import new_envelope, subject_for
from contracts.streams import StreamDeleted
from tests.conftest import eventually


@pytest.fixture
async def world(env):
    """A schema with the processed-ids table and a table the handler writes to."""
    schema = f"consumer_{secrets.token_hex(4)}"
    # A stream of its own: a new durable consumer starts from the first event it holds.
    env = {**env, "jetstream_stream": schema.upper(), "subject_root": f"{schema}.live"}
    engine = create_engine(env["database_url"], schema=schema)
    metadata = sa.MetaData()
    processed = processed_events_table(metadata)
    seen = sa.Table("seen", metadata, sa.Column("stream_id", sa.Text), sa.Column("n", sa.Integer))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    bus = BusProvider(
        env["nats_url"],
        name=schema,
        stream=env["jetstream_stream"],
        subject_root=env["subject_root"],
    )
    await bus.get()  # makes sure the run's stream exists
    nc = await nats.connect(env["nats_url"])
    yield {"engine": engine, "processed": processed, "seen": seen, "bus": bus, "js": nc.jetstream(),
           "env": env, "durable": schema}  # fmt: skip
    await nc.jetstream().delete_stream(env["jetstream_stream"])
    await nc.close()
    await bus.close()
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


async def publish(
    world, stream_id: uuid.UUID, *, msg_id: str | None = None, raw: bytes | None = None
):
    envelope = new_envelope(StreamDeleted(stream_id=stream_id), stream_id=stream_id, producer="t")
    await world["js"].publish(
        subject_for(stream_id, "stream.deleted", root=world["env"]["subject_root"]),
        raw if raw is not None else envelope.model_dump_json().encode(),
        stream=world["env"]["jetstream_stream"],
        headers={"Nats-Msg-Id": msg_id or str(envelope.id)},
    )
    return envelope


def consumer(world, handler, **options) -> EventConsumer:
    engine = world["engine"]
    return EventConsumer(
        bus=world["bus"], sessions=session_factory(engine), processed=world["processed"],
        durable=world["durable"], events="stream.deleted", handler=handler,
        subject_root=world["env"]["subject_root"], ack_wait_s=2, **options,
    )  # fmt: skip


def counting_handler(world, calls: list):
    async def handle(session, envelope):
        calls.append(envelope.id)
        await session.execute(
            sa.insert(world["seen"]).values(stream_id=str(envelope.stream_id), n=1)
        )

    return handle


@contextlib.asynccontextmanager
async def running(event_consumer: EventConsumer):
    task = asyncio.create_task(event_consumer.run())
    try:
        yield event_consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def rows(world) -> int:
    async with world["engine"].connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(world["seen"]))).scalar()


async def pending(world) -> int:
    """Events the durable has not acknowledged yet (to deliver, or delivered and unacked)."""
    try:
        info = await world["js"].consumer_info(world["env"]["jetstream_stream"], world["durable"])
    except NotFoundError:
        return -1  # not created yet
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


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
    async with running(consumer(world, flaky, retry_delay_s=0.1)) as c:
        await eventually(lambda: c.handled == 1)
    assert calls == [envelope.id]
    assert await rows(world) == 1  # the failed attempt's write was rolled back


async def test_a_poison_event_is_dropped_and_the_next_ones_go_through(world):
    calls: list = []
    await publish(world, uuid.uuid4(), msg_id="poison-1", raw=b"{not an envelope")
    good = await publish(world, uuid.uuid4())
    async with running(consumer(world, counting_handler(world, calls))) as c:
        await eventually(lambda: c.handled == 1)
    assert calls == [good.id]


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
    watched = consumer(world, handler, batched=True, retry_delay_s=0.1)
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
