"""What the durable-consumer tests share: a world of their own (schema, JetStream stream and
subject root, and its dead-letter stream), publishing into it, and a consumer running on it."""

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
from chassis.dead_letters import dead_letter_stream
from contracts import new_envelope, subject_for
from contracts.streams import StreamDeleted


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
    with contextlib.suppress(NotFoundError):  # made by the first consumer that ran
        await nc.jetstream().delete_stream(dead_letter_stream(env["jetstream_stream"]))
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
