"""The bus's users on a real nats-server of this test's own (spare port), configured as make dev's
embedded one and deploy/nats/auth.conf are (vitrine/nats_auth.py): nobody connects without
credentials, each service publishes only its own events, consumes with durables, and the gateway
follows a live and publishes only viewer events."""

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from chassis import bus as chassis_bus
from chassis import dead_letters
from chassis.settings import BusSettings
from contracts import new_envelope, subject_for
from contracts.chat import ChatMessage, ChatPosted
from contracts.producers import PUBLISHES
from contracts.viewers import ViewerJoined
from vitrine import embedded, nats_auth
from vitrine.client import EventFeed
from vitrine.embedded import EmbeddedServer
from vitrine.system import free_port

ROOT, STREAM = "authtest.live", "AUTHTEST"
DEPLOY_NATS = Path(__file__).parents[2] / "deploy" / "nats"
REFUSED = (NatsError, JetStreamError, TimeoutError)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    store = Path(tmp_path_factory.mktemp("nats-auth"))
    started = embedded.start_nats(free_port(), store, authorization=(ROOT, STREAM))
    yield started
    started.stop()


def url(server: EmbeddedServer) -> str:
    return f"nats://127.0.0.1:{server.port}"


@contextlib.asynccontextmanager
async def connected(server: EmbeddedServer, user: str) -> AsyncIterator[chassis_bus.Bus]:
    """The bus as `user`'s processes reach it (BusSettings.nats_options)."""
    settings = BusSettings(
        nats_url=url(server), jetstream_stream=STREAM, nats_user=user,
        nats_password=server.passwords[user],
    )  # fmt: skip
    bus = await chassis_bus.connect(
        settings.nats_url, name=user, stream=STREAM, subject_root=ROOT,
        options=settings.nats_options(),
    )  # fmt: skip
    try:
        yield bus
    finally:
        await bus.nc.close()


async def stored(server: EmbeddedServer) -> int:
    async with connected(server, nats_auth.ADMIN) as admin:
        return int((await admin.js.stream_info(STREAM)).state.messages)


async def publish(bus: chassis_bus.Bus, envelope) -> None:
    await bus.js.publish(
        subject_for(envelope.stream_id, envelope.type, root=ROOT),
        envelope.model_dump_json().encode(),
        stream=STREAM,
        timeout=1,
    )


def chat_posted():
    message = ChatMessage(
        id=uuid4(), user_id="u1", display_name="Ada", message="hi",
        created_at="2026-12-03T08:00:00Z",
    )  # fmt: skip
    return new_envelope(ChatPosted(message=message), stream_id=uuid4(), producer="chat")


async def test_nobody_connects_without_the_credentials_of_a_user(server) -> None:
    for credentials in ({}, {"user": "chat", "password": "guess"}, {"user": "nobody"}):
        with pytest.raises(NatsError):
            await nats.connect(url(server), allow_reconnect=False, connect_timeout=2, **credentials)


async def test_each_service_publishes_its_own_events_and_never_another_s(server) -> None:
    async with connected(server, "chat") as chat:
        await publish(chat, chat_posted())
    before = await stored(server)
    for user in nats_auth.USERS:
        if user == "chat":
            continue
        async with connected(server, user) as other:
            with pytest.raises(REFUSED):
                await publish(other, chat_posted())
            with pytest.raises(REFUSED):  # nor empties the stream (refused: no answer)
                await asyncio.wait_for(other.js.purge_stream(STREAM), 1)
    assert await stored(server) == before
    assert set(PUBLISHES) <= set(nats_auth.USERS)


async def test_a_service_reads_with_a_durable_and_the_gateway_follows_a_live(server) -> None:
    sent = chat_posted()
    async with connected(server, "chat") as chat:
        await publish(chat, sent)
    async with connected(server, "analytics") as analytics:
        durable = await analytics.js.pull_subscribe(
            f"{ROOT}.{sent.stream_id}.>", durable="analytics-chat", stream=STREAM
        )
        (msg,) = await durable.fetch(1, timeout=5)
        await msg.ack_sync(timeout=2)
        info = await analytics.js.consumer_info(STREAM, "analytics-chat")
        assert info.ack_floor.stream_seq == msg.metadata.sequence.stream

    async with connected(server, "gateway") as gateway:
        received: asyncio.Queue = asyncio.Queue()
        follow = await gateway.js.subscribe(
            f"{ROOT}.{sent.stream_id}.>", stream=STREAM, ordered_consumer=True,
            cb=received.put,
        )  # fmt: skip
        assert (await asyncio.wait_for(received.get(), 5)).data == sent.model_dump_json().encode()
        joined = new_envelope(
            ViewerJoined(session_id="s" * 16, gateway_id="gw-1"),
            stream_id=sent.stream_id, producer="gateway",
        )  # fmt: skip
        await publish(gateway, joined)  # its own
        assert (await asyncio.wait_for(received.get(), 5)).subject.endswith(".viewer.joined")
        with pytest.raises(REFUSED):
            await publish(gateway, chat_posted())
        await follow.unsubscribe()


async def test_a_user_never_reads_another_s_replies(server) -> None:
    """Replies come to the user's own inbox; the others' are out of its reach (the admin, who
    may read everything, sees what the others could not)."""
    async with connected(server, "gateway") as gateway:
        spies = {}
        for user in ("webhooks", nats_auth.ADMIN):
            nc = await nats.connect(url(server), user=user, password=server.passwords[user])
            spies[user] = (nc, await nc.subscribe("_INBOX_gateway.>"))
            await nc.flush()
        await gateway.js.stream_info(STREAM)  # a request, and its reply to the gateway's inbox
        reply = await spies[nats_auth.ADMIN][1].next_msg(timeout=2)
        assert reply.subject.startswith("_INBOX_gateway.")
        with pytest.raises(NatsError):
            await spies["webhooks"][1].next_msg(timeout=1)
        for nc, _ in spies.values():
            await nc.close()


async def test_a_service_parks_a_dead_letter_and_replays_it_when_the_operator_asks(server) -> None:
    sent = chat_posted()
    async with connected(server, "chat") as chat:
        await publish(chat, sent)
    async with connected(server, "products") as products:
        await dead_letters.ensure_dead_letter_stream(products.js, stream=STREAM)
        durable = await products.js.pull_subscribe(
            f"{ROOT}.{sent.stream_id}.>", durable="products-dead", stream=STREAM
        )
        (msg,) = await durable.fetch(1, timeout=5)
        await dead_letters.park(
            products.js, stream=STREAM, consumer="products-dead", message=msg,
            reason=dead_letters.Reason.POISON, error="test",
        )  # fmt: skip
        await msg.term()

        async def replay(seq: int) -> bool:
            letter = await dead_letters.dead_letter(products.js, stream=STREAM, seq=seq)
            assert letter.data == sent.model_dump_json().encode()
            await dead_letters.discard(products.js, stream=STREAM, seq=seq)
            return True

        serving = await dead_letters.serve_replays(
            products.nc, stream=STREAM, consumer="products-dead", replay=replay
        )
        async with connected(server, nats_auth.ADMIN) as admin:
            (parked,) = await dead_letters.dead_letters(admin.js, stream=STREAM)
            answer = await dead_letters.request_replay(
                admin.nc, stream=STREAM, consumer="products-dead", seq=parked.seq, timeout_s=5
            )
            assert answer == {"seq": parked.seq, "handled": True}
            assert await dead_letters.dead_letters(admin.js, stream=STREAM) == []
        await serving.unsubscribe()


def test_the_committed_configuration_is_the_generated_one() -> None:
    committed = (DEPLOY_NATS / "auth.conf").read_text()
    assert committed == nats_auth.conf_file(subject_root="live", stream="LIVE")


async def test_the_committed_configuration_takes_each_password_from_the_environment(
    tmp_path: Path,
) -> None:
    """deploy/nats/nats.conf as compose and Kubernetes run it: passwords from the environment."""
    port = free_port()
    passwords = {user: f"pw-{user}-{uuid4().hex}" for user in nats_auth.all_users()}
    env = {nats_auth.password_variable(user): pw for user, pw in passwords.items()}
    # The committed files, but for where it keeps its data and its monitoring port.
    conf = (DEPLOY_NATS / "nats.conf").read_text()
    conf = conf.replace("store_dir: /data", f"store_dir: {tmp_path / 'data'}")
    (tmp_path / "nats.conf").write_text(conf.replace("http_port: 8222", "http_port: 0"))
    (tmp_path / "auth.conf").write_text((DEPLOY_NATS / "auth.conf").read_text())
    argv = [
        str(embedded._nats_server_binary()), "-c", str(tmp_path / "nats.conf"),
        "-a", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        nc = None
        for _ in range(50):
            with contextlib.suppress(NatsError, OSError):
                nc = await nats.connect(
                    f"nats://127.0.0.1:{port}", user="chat", password=passwords["chat"],
                    allow_reconnect=False, connect_timeout=1,
                )  # fmt: skip
                break
            await asyncio.sleep(0.1)
        assert nc is not None, "nats-server did not take deploy/nats/nats.conf"
        await nc.close()
        with pytest.raises(NatsError):
            await nats.connect(
                f"nats://127.0.0.1:{port}", user="chat", password=passwords["streams"],
                allow_reconnect=False, connect_timeout=1,
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)


async def test_an_external_reader_reads_the_events_and_publishes_none(server) -> None:
    sent = chat_posted()
    async with connected(server, "chat") as chat:
        await publish(chat, sent)
    async with await EventFeed.connect(
        url(server), durable="warehouse", stream_id=sent.stream_id, subject_root=ROOT,
        stream=STREAM, user=nats_auth.READER, password=server.passwords[nats_auth.READER],
    ) as feed:  # fmt: skip
        async for event in feed:
            assert event.envelope == sent
            await event.ack()
            break
    nc = await nats.connect(
        url(server), user=nats_auth.READER, password=server.passwords[nats_auth.READER],
        inbox_prefix=b"_INBOX_reader",
    )  # fmt: skip
    with pytest.raises(REFUSED):
        await nc.jetstream().publish(
            subject_for(sent.stream_id, "chat.posted", root=ROOT), b"{}", stream=STREAM, timeout=1
        )
    await nc.close()
