"""The transactional outbox and its relay, over real PostgreSQL and NATS JetStream.

Each test gets its own schema, outbox table and service name, so relays' advisory locks and
NOTIFY channels never meet another test's; events are told apart by a fresh live (stream) id.
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import orjson
import pytest
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chassis.bus import BusProvider
from chassis.db import create_engine, session_factory
from chassis.outbox import Outbox, OutboxRelay, outbox_table
from contracts import Envelope, stream_subject
from contracts.viewers import ViewersUpdated
from tests.conftest import eventually
from tests.support.tcpproxy import TcpProxy


@dataclass
class ServiceOutbox:
    """One service's outbox: its own schema, table, producer name and sessions."""

    service: str
    engine: AsyncEngine
    table: sa.Table
    outbox: Outbox
    sessions: async_sessionmaker[AsyncSession]

    async def record(self, stream_id: UUID, *figures: int) -> list[Envelope]:
        """Record one `viewers.updated` per figure in a single committed transaction."""
        async with self.sessions() as session, session.begin():
            return [
                await self.outbox.record(session, audience(n), stream_id=stream_id) for n in figures
            ]

    async def pending(self) -> int:
        async with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(self.table.c.published_at.is_(None))
            return (await conn.execute(query)).scalar_one()

    async def rows(self) -> list[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            return list(
                (await conn.execute(sa.select(self.table).order_by(self.table.c.seq))).all()
            )


MakeService = Callable[[], Awaitable[ServiceOutbox]]
MakeBus = Callable[..., BusProvider]


def audience(current: int) -> ViewersUpdated:
    return ViewersUpdated(current=current, peak=current, total=current, unique=current)


@pytest.fixture
async def make_service(env: dict) -> AsyncIterator[MakeService]:
    """Creates services, each in a fresh schema; drops the schemas afterwards."""
    made: list[ServiceOutbox] = []

    async def make() -> ServiceOutbox:
        name = f"outbox_{secrets.token_hex(4)}"
        engine = create_engine(env["database_url"], schema=name, pool_size=4)
        metadata = sa.MetaData()
        table = outbox_table(metadata)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            await conn.run_sync(metadata.create_all)
        outbox = Outbox(table=table, producer=name, subject_root=env["subject_root"])
        made.append(ServiceOutbox(name, engine, table, outbox, session_factory(engine)))
        return made[-1]

    yield make
    for service in made:
        async with service.engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{service.service}" CASCADE'))
        await service.engine.dispose()


@pytest.fixture
async def buses(env: dict) -> AsyncIterator[MakeBus]:
    """Bus providers for relays (to the run's NATS unless told otherwise), closed afterwards."""
    made: list[BusProvider] = []

    def bus(url: str | None = None) -> BusProvider:
        made.append(
            BusProvider(
                url or env["nats_url"],
                name=f"outbox-test-{len(made)}",
                stream=env["jetstream_stream"],
                subject_root=env["subject_root"],
            )
        )
        return made[-1]

    yield bus
    for provider in made:
        await provider.close()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    """Run a relay in the background; cancel it on the way out."""
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        await stop(task)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def relay_for(service: ServiceOutbox, bus: BusProvider, *, idle_poll_s: float) -> OutboxRelay:
    return OutboxRelay(
        engine=service.engine,
        table=service.table,
        bus=bus,
        service=service.service,
        idle_poll_s=idle_poll_s,
    )


async def stored(js: JetStreamContext, env: dict, stream_id: UUID) -> list[Msg]:
    """Every message JetStream holds about one live, oldest first."""
    subject = stream_subject(stream_id, root=env["subject_root"])
    info = await js.stream_info(env["jetstream_stream"], subjects_filter=subject)
    count = sum((info.state.subjects or {}).values())
    if not count:
        return []
    sub = await js.subscribe(subject, stream=env["jetstream_stream"], ordered_consumer=True)
    try:
        return [await sub.next_msg(timeout=5) for _ in range(count)]
    finally:
        await sub.unsubscribe()


def envelopes(messages: list[Msg]) -> list[Envelope]:
    return [Envelope.model_validate_json(msg.data) for msg in messages]


def msg_ids(messages: list[Msg]) -> list[str]:
    return [(msg.headers or {}).get("Nats-Msg-Id", "") for msg in messages]


async def all_published(service: ServiceOutbox) -> bool:
    return await service.pending() == 0


# --- publishing ----------------------------------------------------------------------------------


async def test_committed_events_are_published_once_in_order_and_rolled_back_ones_never(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    relay = relay_for(service, buses(), idle_poll_s=0.2)

    async with running(relay):
        first = await service.record(stream_id, 1, 2, 3)
        with pytest.raises(RuntimeError):
            async with service.sessions() as session, session.begin():
                await service.outbox.record(session, audience(98), stream_id=stream_id)
                await service.outbox.record(session, audience(99), stream_id=stream_id)
                raise RuntimeError("the use case failed after recording its events")
        second = await service.record(stream_id, 4)
        await eventually(lambda: all_published(service), timeout=10)

    sent = first + second
    messages = await stored(js, env, stream_id)
    assert envelopes(messages) == sent
    assert msg_ids(messages) == [str(e.id) for e in sent]
    assert [m.subject for m in messages] == [
        f"{env['subject_root']}.{stream_id}.viewers.updated"
    ] * 4
    assert relay.published == 4
    rows = await service.rows()
    assert [r.id for r in rows] == [e.id for e in sent]
    assert all(r.published_at is not None for r in rows)


async def test_an_event_recorded_while_the_relay_idles_is_published_without_waiting_for_a_poll(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    before = await service.record(stream_id, 1)
    relay = relay_for(service, buses(), idle_poll_s=30)

    async with running(relay):
        # Published by the relay's first pass; afterwards it idles for up to 30 s.
        await eventually(lambda: all_published(service), timeout=10)
        await asyncio.sleep(0.5)
        after = await service.record(stream_id, 2)
        await eventually(lambda: all_published(service), timeout=5)

    assert envelopes(await stored(js, env, stream_id)) == before + after


# --- leadership ----------------------------------------------------------------------------------


async def test_only_one_relay_of_a_service_publishes_and_another_takes_over_when_it_stops(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    relays = [relay_for(service, buses(), idle_poll_s=0.2) for _ in range(2)]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        first = []
        for n in range(1, 6):
            first += await service.record(stream_id, n)
        await eventually(lambda: all_published(service), timeout=10)
        # Give a would-be second publisher time to show up.
        await asyncio.sleep(0.5)
        assert sorted(relay.published for relay in relays) == [0, 5]
        leader = next(i for i, relay in enumerate(relays) if relay.published)
        standby = relays[1 - leader]

        await stop(tasks[leader])
        second = []
        for n in range(6, 11):
            second += await service.record(stream_id, n)
        await eventually(lambda: all_published(service), timeout=10)
        assert standby.published == 5
    finally:
        for task in tasks:
            await stop(task)

    messages = await stored(js, env, stream_id)
    assert envelopes(messages) == first + second
    assert len(set(msg_ids(messages))) == 10


async def test_two_services_in_one_database_each_have_their_own_leader(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    services = [await make_service(), await make_service()]
    stream_id = uuid4()
    # A long poll: a relay waiting on the other service's lock would not publish within the test.
    relays = [relay_for(service, buses(), idle_poll_s=30) for service in services]

    async with running(relays[0]), running(relays[1]):
        await asyncio.sleep(0.5)
        recorded = [await service.record(stream_id, n) for n, service in enumerate(services)]
        for service in services:
            await eventually(lambda service=service: all_published(service), timeout=5)

    assert [relay.published for relay in relays] == [1, 1]
    messages = await stored(js, env, stream_id)
    assert {e.id for e in envelopes(messages)} == {e.id for batch in recorded for e in batch}
    assert {e.producer for e in envelopes(messages)} == {s.service for s in services}


async def test_one_service_deployed_under_two_schemas_of_a_database_has_a_leader_in_each(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    schemas = [await make_service(), await make_service()]
    stream_id = uuid4()
    relays = [
        OutboxRelay(
            engine=schema.engine,
            table=schema.table,
            bus=buses(),
            service="streams",
            scope=schema.service,
            idle_poll_s=0.1,
        )
        for schema in schemas
    ]
    async with running(relays[0]), running(relays[1]):
        for n, schema in enumerate(schemas):
            await schema.record(stream_id, n)
        for schema in schemas:
            await eventually(lambda schema=schema: all_published(schema), timeout=5)
    assert [relay.published for relay in relays] == [1, 1]


# --- outages -------------------------------------------------------------------------------------


async def test_writes_go_on_while_nats_is_away_and_the_relay_catches_up_in_order(
    make_service: MakeService, js: JetStreamContext, env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    service = await make_service()
    stream_id = uuid4()
    nats_address = urlsplit(env["nats_url"])
    proxy = TcpProxy(nats_address.hostname or "127.0.0.1", nats_address.port or 4222)
    proxy.start()
    bus = BusProvider(
        f"nats://127.0.0.1:{proxy.port}",
        name="outbox-test-proxied",
        stream=env["jetstream_stream"],
        subject_root=env["subject_root"],
    )
    relay = relay_for(service, bus, idle_poll_s=0.2)
    away = False
    try:
        async with running(relay):
            sent = await service.record(stream_id, 1)
            await eventually(lambda: all_published(service), timeout=10)

            proxy.cut()
            away = True
            for n in range(2, 5):
                sent += await asyncio.wait_for(service.record(stream_id, n), timeout=5)
            # Stay away until a publish times out, so the relay gives up its batch and retries.
            await eventually(lambda: "outbox relay:" in caplog.text, timeout=20)
            for n in range(5, 7):
                sent += await asyncio.wait_for(service.record(stream_id, n), timeout=5)
            assert await service.pending() == 5

            proxy.start()
            away = False
            await eventually(lambda: all_published(service), timeout=30)
    finally:
        if away:
            proxy.start()  # so that the bus can drain before it closes
        await bus.close()
        proxy.close()

    messages = await stored(js, env, stream_id)
    assert envelopes(messages) == sent
    assert msg_ids(messages) == [str(e.id) for e in sent]


async def test_republishing_an_event_already_on_jetstream_does_not_store_it_twice(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    [envelope] = await service.record(stream_id, 1)
    # A relay published the row and died before marking it sent.
    [row] = await service.rows()
    ack = await js.publish(
        row.subject,
        orjson.dumps(row.envelope),
        stream=env["jetstream_stream"],
        headers={**row.headers, "Nats-Msg-Id": str(row.id)},
    )
    assert not ack.duplicate

    relay = relay_for(service, buses(), idle_poll_s=0.2)
    async with running(relay):
        await eventually(lambda: all_published(service), timeout=10)

    assert relay.published == 1
    messages = await stored(js, env, stream_id)
    assert envelopes(messages) == [envelope]
    assert msg_ids(messages) == [str(envelope.id)]


async def test_a_relay_that_lost_its_sent_marks_publishes_again_without_duplicates(
    make_service: MakeService, buses: MakeBus, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    sent = await service.record(stream_id, 1, 2, 3)
    async with running(relay_for(service, buses(), idle_poll_s=0.2)):
        await eventually(lambda: all_published(service), timeout=10)

    # As if the marking transaction had never committed.
    async with service.engine.begin() as conn:
        await conn.execute(sa.update(service.table).values(published_at=None))

    again = relay_for(service, buses(), idle_poll_s=0.2)
    async with running(again):
        await eventually(lambda: all_published(service), timeout=10)

    assert again.published == 3
    assert envelopes(await stored(js, env, stream_id)) == sent


async def test_a_relay_started_while_nats_is_away_publishes_once_it_is_back(
    make_service: MakeService, js: JetStreamContext, env: dict
) -> None:
    service = await make_service()
    stream_id = uuid4()
    nats_address = urlsplit(env["nats_url"])
    proxy = TcpProxy(nats_address.hostname or "127.0.0.1", nats_address.port or 4222)
    bus = BusProvider(
        f"nats://127.0.0.1:{proxy.port}",
        name="outbox-test-late-nats",
        stream=env["jetstream_stream"],
        subject_root=env["subject_root"],
    )
    try:
        async with running(relay_for(service, bus, idle_poll_s=0.2)):
            sent = await service.record(stream_id, 1, 2)
            await asyncio.sleep(1.0)
            sent += await service.record(stream_id, 3)
            assert await service.pending() == 3
            proxy.start()
            await eventually(lambda: all_published(service), timeout=15)
    finally:
        await bus.close()
        proxy.close()

    assert envelopes(await stored(js, env, stream_id)) == sent


async def test_a_relay_whose_database_connections_drop_takes_leadership_again_and_goes_on(
    make_service: MakeService,
    buses: MakeBus,
    js: JetStreamContext,
    env: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = await make_service()
    stream_id = uuid4()
    relay = relay_for(service, buses(), idle_poll_s=0.2)
    async with running(relay):
        sent = await service.record(stream_id, 1)
        await eventually(lambda: all_published(service), timeout=10)
        async with service.engine.connect() as conn:
            dropped = await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": service.service},
            )
            assert dropped.all()
        # The relay notices when it next checks its leader connection (idle_poll_s).
        await eventually(lambda: "outbox relay:" in caplog.text, timeout=5)
        sent += await service.record(stream_id, 2)
        await eventually(lambda: all_published(service), timeout=10)

    assert envelopes(await stored(js, env, stream_id)) == sent


# --- past the duplicate window -------------------------------------------------------------------


async def test_events_a_dead_relay_stored_are_not_stored_again_after_the_duplicate_window(
    make_service: MakeService, js: JetStreamContext, env: dict
) -> None:
    """A relay published a batch and died before marking its rows; the next one comes after
    JetStream has forgotten the ids. It finds those events in the stream and sends only the rest."""
    root, name = f"{env['subject_root']}_dw", f"{env['jetstream_stream']}_DW"
    await js.add_stream(
        StreamConfig(name=name, subjects=[f"{root}.>"], duplicate_window=1.0, storage="memory")
    )
    service = await make_service()
    service.outbox = Outbox(table=service.table, producer=service.service, subject_root=root)
    bus = BusProvider(env["nats_url"], name="outbox-test-window", stream=name, subject_root=root)
    stream_id = uuid4()
    try:
        sent = await service.record(stream_id, 1, 2, 3)
        for row in (await service.rows())[:2]:  # what the dead relay got into the stream
            await js.publish(
                row.subject, orjson.dumps(row.envelope), stream=name,
                headers={"Nats-Msg-Id": str(row.id)},
            )  # fmt: skip
        await asyncio.sleep(1.5)  # past the window: a plain re-publish would be stored again
        async with running(relay_for(service, bus, idle_poll_s=0.2)):
            await eventually(lambda: all_published(service), timeout=10)
        ours = {**env, "subject_root": root, "jetstream_stream": name}
        assert msg_ids(await stored(js, ours, stream_id)) == [str(e.id) for e in sent]
    finally:
        await bus.close()
        await js.delete_stream(name)
