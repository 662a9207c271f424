"""Failing events on real JetStream: they come back later each time, stop after max_deliver and
are kept as dead letters an operator can list and replay; only real poison is parked at once; a
PostgreSQL outage parks nothing, however often the event comes back; an event that never ran is
not parked for its deliveries; durables made before keep working."""

import asyncio
import itertools
import uuid

import pytest
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from chassis.consumer import EventConsumer, PoisonEvent
from chassis.db import create_engine, session_factory
from chassis.dead_letters import dead_letters
from chassis.redelivery import UNLIMITED, Redelivery
from contracts import new_envelope
from contracts.streams import StreamDeleted
from tests.conftest import eventually
from tests.support.consumer_world import (
    consumer,
    counting_handler,
    pending,
    publish,
    rows,
    running,
)
from tests.support.tcpproxy import TcpProxy
from vitrine.cli import app as cli

DELAYS = (0.3, 0.9, 1.8)


async def parked(world, *, count: int = 1) -> list:
    async def enough():
        found = await dead_letters(world["js"], stream=world["env"]["jetstream_stream"])
        return found if len(found) >= count else None

    return await eventually(enough, timeout=20)


def dead_letter_count(durable: str, reason: str) -> float:
    labels = {"consumer": durable, "reason": reason}
    return REGISTRY.get_sample_value("vitrine_dead_letters_total", labels) or 0.0


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (RuntimeError("the shop's API says 500"), "RuntimeError: the shop's API says 500"),
        (KeyError("live"), "KeyError: 'live'"),  # a handler bug
    ],
)
async def test_a_failing_event_comes_back_later_each_time_then_is_a_dead_letter(
    world, error, described
):
    tries: list[float] = []
    loop = asyncio.get_running_loop()

    async def broken(session, envelope):
        tries.append(loop.time())
        raise error

    before = dead_letter_count(world["durable"], "failed")
    envelope = await publish(world, uuid.uuid4())
    failing = consumer(world, broken, redelivery=Redelivery(DELAYS, max_deliver=4))
    async with running(failing):
        [letter] = await parked(world)
        await asyncio.sleep(2 * DELAYS[-1])  # long enough for one more delivery, were there one
    assert len(tries) == 4, tries  # the first delivery and 3 retries, nothing after
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    for gap, delay in zip(gaps, DELAYS, strict=True):
        assert delay <= gap, gaps  # no upper bound: a loaded machine may be late
    assert (letter.consumer, letter.reason, letter.deliveries) == (world["durable"], "failed", 4)
    assert letter.error == described
    assert letter.subject.endswith(".stream.deleted") and letter.stream_seq == 1
    assert letter.data == envelope.model_dump_json().encode()  # byte for byte, to replay
    assert await pending(world) == 0  # nothing left to redeliver
    assert dead_letter_count(world["durable"], "failed") == before + 1


async def test_a_dead_letter_replayed_after_the_fix_is_handled_once_and_removed(world):
    calls: list = []
    count = counting_handler(world, calls)
    fixed = False

    async def handler(session, envelope):
        if not fixed:
            raise RuntimeError("missing product")
        await count(session, envelope)

    envelope = await publish(world, uuid.uuid4())
    following = consumer(world, handler, redelivery=Redelivery((0.1,), max_deliver=2))
    async with running(following):
        [letter] = await parked(world)
        fixed = True
        assert await following.replay_dead_letter(letter.seq) is True
        assert calls == [envelope.id] and await rows(world) == 1
        assert await dead_letters(world["js"], stream=world["env"]["jetstream_stream"]) == []
        with pytest.raises(NotFoundError):
            await following.replay_dead_letter(letter.seq)  # gone: not handled twice


async def test_a_poison_event_is_kept_as_a_dead_letter_and_the_next_ones_go_through(world):
    calls: list = []
    await publish(world, uuid.uuid4(), msg_id="poison-1", raw=b"{not an envelope")
    good = await publish(world, uuid.uuid4())
    async with running(consumer(world, counting_handler(world, calls))) as c:
        await eventually(lambda: c.handled == 1)
        [letter] = await parked(world)
    assert calls == [good.id]
    assert (letter.reason, letter.deliveries, letter.data) == ("poison", 1, b"{not an envelope")
    assert letter.error.startswith("ValidationError")
    assert "not an envelope" not in letter.error  # the rejected input is not quoted


async def test_an_event_of_a_type_no_model_knows_is_poison(world):
    stream_id = uuid.uuid4()
    known = new_envelope(StreamDeleted(stream_id=stream_id), stream_id=stream_id, producer="t")
    unknown = known.model_copy(update={"type": "stream.exploded"}).model_dump_json().encode()
    wrong = known.model_copy(update={"data": {"stream_id": "no"}}).model_dump_json().encode()
    await publish(world, stream_id, msg_id="unknown-type", raw=unknown)
    await publish(world, stream_id, msg_id="wrong-payload", raw=wrong)
    calls: list = []
    async with running(consumer(world, counting_handler(world, calls))):
        letters = await parked(world, count=2)
    assert calls == []  # found before the handler ran
    assert [(letter.reason, letter.deliveries) for letter in letters] == [("poison", 1)] * 2
    assert letters[0].error == "LookupError: unknown event stream.exploded v1"
    assert letters[1].error.startswith("ValidationError")


async def test_a_lookup_error_in_a_handler_is_retried_not_parked(world):
    """Events arrive out of order: a handler that does not know the live yet fails this
    time, and the event goes through once its live is known."""
    calls: list = []
    count = counting_handler(world, calls)
    lives: dict = {}

    async def handler(session, envelope):
        lives[envelope.stream_id]  # KeyError until the live is known
        await count(session, envelope)

    envelope = await publish(world, uuid.uuid4())
    following = consumer(world, handler, redelivery=Redelivery((0.3,), max_deliver=5))
    async with running(following) as c:
        await asyncio.sleep(0.5)
        lives[envelope.stream_id] = True
        await eventually(lambda: c.handled == 1)
    assert calls == [envelope.id]
    assert await dead_letters(world["js"], stream=world["env"]["jetstream_stream"]) == []


async def test_a_postgresql_outage_parks_nothing_and_the_event_goes_through_after(world):
    """The database away for several seconds: the event comes back again and again, far past
    max_deliver, with growing delays, and is handled once PostgreSQL is back — never parked."""
    address = make_url(world["env"]["database_url"])
    proxy = TcpProxy(address.host or "127.0.0.1", address.port or 5432)
    proxy.start()
    url = address.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = create_engine(url, schema=world["durable"], connect_timeout_s=1, pool_timeout_s=1)
    calls: list = []
    deliveries: list[int] = []

    async def settled() -> bool:
        return await pending(world) == 0

    following = EventConsumer(
        bus=world["bus"], sessions=session_factory(engine), processed=world["processed"],
        durable=world["durable"], events="stream.deleted",
        handler=counting_handler(world, calls), subject_root=world["env"]["subject_root"],
        ack_wait_s=2,
        redelivery=Redelivery((0.1,), max_deliver=2, outage_first_s=0.1, outage_max_s=0.8),
    )  # fmt: skip
    handle = following.handle

    async def counted(message):
        deliveries.append(message.metadata.num_delivered)
        await handle(message)

    following.handle = counted  # type: ignore[method-assign]
    try:
        async with running(following) as c:
            await eventually(settled, timeout=10)  # subscribed
            proxy.cut()
            envelope = await publish(world, uuid.uuid4())
            await asyncio.sleep(4)
            assert c.handled == 0
            proxy.start()
            await eventually(lambda: c.handled == 1, timeout=20)
            await eventually(settled, timeout=10)
    finally:
        proxy.close()
        await engine.dispose()
    assert calls == [envelope.id] and await rows(world) == 1
    assert await dead_letters(world["js"], stream=world["env"]["jetstream_stream"]) == []
    assert max(deliveries) > 2 * following.redelivery.max_deliver, deliveries  # never parked
    # 0.1, 0.2, 0.4, 0.8, 0.8 … s apart: a handful of deliveries, not a busy loop.
    assert len(deliveries) < 15, deliveries


async def test_a_poison_event_raised_on_a_connection_error_is_parked_at_once(world):
    """A handler's PoisonEvent is its verdict, even raised while handling a connection error
    (which, as the context of any other error, would make it an outage)."""
    calls: list = []

    async def handler(session, envelope):
        calls.append(envelope.id)
        try:
            raise ConnectionRefusedError(111, "the shop's API refused")
        except ConnectionError:
            raise PoisonEvent("this product never existed")  # noqa: B904 - context kept on purpose

    await publish(world, uuid.uuid4())
    following = consumer(world, handler, redelivery=Redelivery((0.1,), max_deliver=5))
    async with running(following):
        [letter] = await parked(world)
        await asyncio.sleep(0.5)
    assert (letter.reason, letter.deliveries) == ("poison", 1)
    assert letter.error == "PoisonEvent: this product never existed"
    assert len(calls) == 1 and await pending(world) == 0


async def test_an_event_delivered_past_the_bound_that_never_ran_is_handled_not_parked(world):
    """Its earlier deliveries went unanswered (here: another client fetched it and never
    answered, as a process that died on a fetch-mate would): it never raised, so it runs."""
    calls: list = []
    envelope = await publish(world, uuid.uuid4())
    following = consumer(
        world, counting_handler(world, calls), redelivery=Redelivery(max_deliver=1)
    )
    js = world["js"]
    crashed = await js.pull_subscribe(
        following.subject, durable=world["durable"], stream=world["env"]["jetstream_stream"],
        config=following._config(),
    )  # fmt: skip
    for _ in range(2):  # two deliveries nobody answers, past max_deliver
        assert len(await crashed.fetch(1, timeout=5)) == 1
    await crashed.unsubscribe()
    async with running(following) as c:  # the next delivery comes after ack_wait (2 s)
        await eventually(lambda: c.handled == 1, timeout=15)

        async def settled() -> bool:
            return await pending(world) == 0

        await eventually(settled, timeout=5)
    assert calls == [envelope.id]
    assert await dead_letters(world["js"], stream=world["env"]["jetstream_stream"]) == []


async def test_a_durable_made_before_gets_the_current_config_and_keeps_its_position(world):
    calls: list = []
    stream = world["env"]["jetstream_stream"]
    first = await publish(world, uuid.uuid4())
    following = consumer(world, counting_handler(world, calls))
    # Another ack_wait and a server-side max_deliver (which would drop events): the first
    # event handled.
    await world["js"].add_consumer(
        stream,
        ConsumerConfig(
            name=world["durable"], durable_name=world["durable"], filter_subject=following.subject,
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30,
            max_deliver=13, max_ack_pending=1000,
        ),
    )  # fmt: skip
    old = await world["js"].pull_subscribe_bind(world["durable"], stream=stream)
    [message] = await old.fetch(1, timeout=5)
    await message.ack_sync()
    await old.unsubscribe()
    assert (await world["js"].consumer_info(stream, world["durable"])).config.max_deliver == 13
    later = await publish(world, uuid.uuid4())
    async with running(following) as c:
        await eventually(lambda: c.handled == 1)
    config = (await world["js"].consumer_info(stream, world["durable"])).config
    assert config.max_deliver == UNLIMITED  # our own count parks; JetStream never drops
    assert config.ack_wait == 2 and config.filter_subject == following.subject
    assert calls == [later.id] and first.id not in calls  # resumed where it was
    async with world["engine"].connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(world["seen"]))
        ).scalar() == 1


async def test_an_operator_lists_and_replays_a_dead_letter_from_the_command_line(
    world, monkeypatch
):
    monkeypatch.setenv("NATS_URL", world["env"]["nats_url"])
    monkeypatch.setenv("JETSTREAM_STREAM", world["env"]["jetstream_stream"])
    calls: list = []
    count = counting_handler(world, calls)
    fixed = False

    async def handler(session, envelope):
        if not fixed:
            raise LookupError("no such live here yet")  # retried, then parked
        await count(session, envelope)

    envelope = await publish(world, uuid.uuid4())
    runner = CliRunner()

    def vitrine(*args: str):  # in a thread: the command runs an event loop of its own
        return asyncio.to_thread(runner.invoke, cli, ["dead-letters", *args])

    redelivery = Redelivery((0.1,), max_deliver=2)
    async with running(consumer(world, handler, redelivery=redelivery)) as following:
        [letter] = await parked(world)
        listed = await vitrine("list", "--consumer", world["durable"])
        assert listed.exit_code == 0, listed.output
        (line,) = listed.output.splitlines()
        assert line.startswith(f"{letter.seq}\t") and "\tfailed\t2\t" in line
        assert line.endswith("\tLookupError: no such live here yet")
        fixed = True
        replayed = await vitrine("replay", str(letter.seq))
        assert (replayed.exit_code, replayed.output) == (0, f"replayed {letter.seq}\n")
        assert calls == [envelope.id] and following.handled == 1
        again = await vitrine("replay", str(letter.seq))
        assert again.exit_code == 1 and "no dead letter" in again.output
    assert (await vitrine("list")).output == "no dead letters\n"


async def test_a_replay_with_no_consumer_running_says_so_and_keeps_the_dead_letter(
    world, monkeypatch
):
    monkeypatch.setenv("NATS_URL", world["env"]["nats_url"])
    monkeypatch.setenv("JETSTREAM_STREAM", world["env"]["jetstream_stream"])
    await publish(world, uuid.uuid4(), msg_id="poison-3", raw=b"[]")
    async with running(consumer(world, counting_handler(world, []))):
        [letter] = await parked(world)
    answer = await asyncio.to_thread(
        CliRunner().invoke, cli, ["dead-letters", "replay", str(letter.seq)]
    )
    assert answer.exit_code == 1 and "not running" in answer.output
    assert [kept.seq for kept in await parked(world)] == [letter.seq]
    discarded = await asyncio.to_thread(
        CliRunner().invoke, cli, ["dead-letters", "discard", str(letter.seq)]
    )
    assert discarded.exit_code == 0
    assert await dead_letters(world["js"], stream=world["env"]["jetstream_stream"]) == []
