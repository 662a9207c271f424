"""The fan-out's ordering and back-pressure rules (services/gateway/hub.py), over a socket double
that records writes."""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import orjson
from nats.aio.msg import Msg

from contracts.producers import PUBLISHES
from services.gateway.hub import CLOSE_TRY_AGAIN, StreamHub, Viewer

ROOT = "t.live"
STREAM_ID = str(uuid.uuid4())


class RecordingSocket:
    """Stands in for RawSocket: keeps what was written and how it was closed."""

    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self._buffered = buffered
        self.dropped_with: int | None = None

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def buffered(self) -> int:
        return self._buffered

    def drop(self, code: int, reason: str) -> None:
        self.dropped_with = code

    @property
    def is_closing(self) -> bool:
        return self.dropped_with is not None

    def frames(self) -> list[dict]:
        return [json.loads(payload) for payload in parse_frames(b"".join(self.writes))]


def parse_frames(data: bytes) -> list[bytes]:
    """Unmasked websocket text frames → payloads."""
    payloads, i = [], 0
    while i < len(data):
        assert data[i] == 0x81, "a final, unmasked text frame"
        length, i = data[i + 1] & 0x7F, i + 2
        if length == 126:
            length, i = int.from_bytes(data[i : i + 2], "big"), i + 2
        elif length == 127:
            length, i = int.from_bytes(data[i : i + 8], "big"), i + 8
        payloads.append(data[i : i + length])
        i += length
    return payloads


def message(
    seq: int, event_type: str = "stream.updated", title: str = "x", **envelope_fields: object
) -> Msg:
    """The stored event, from the service that publishes its type unless told otherwise."""
    producer = next(p for p, families in PUBLISHES.items() if event_type.startswith(families))
    envelope = {
        "id": str(uuid.uuid4()), "type": event_type, "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(), "stream_id": STREAM_ID,
        "producer": producer, "data": {"title": title}, **envelope_fields,
    }  # fmt: skip
    return Msg(
        _client=None,  # type: ignore[arg-type]
        subject=f"{ROOT}.{STREAM_ID}.{event_type}",
        reply=f"$JS.ACK.LIVE.c.1.{seq}.{seq}.0.0",
        data=orjson.dumps(envelope),
    )


def hub(last_seq: int = 0, max_held: int = 100) -> StreamHub:
    return StreamHub(
        stream_id=STREAM_ID, js=None, jetstream_stream="LIVE",  # type: ignore[arg-type]
        subject_root=ROOT, last_seq=last_seq, max_held=max_held,
    )  # fmt: skip


async def deliver(target: StreamHub, *messages: Msg) -> None:
    for msg in messages:
        await target._on_message(msg)
    await asyncio.sleep(0)  # the flush runs on the next loop turn


async def test_a_burst_reaches_a_live_viewer_in_one_write_in_order():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    target.go_live(viewer)
    await deliver(target, *(message(seq, title=f"t{seq}") for seq in (1, 2, 3)))
    assert len(socket.writes) == 1
    frames = socket.frames()
    assert [f["seq"] for f in frames] == [1, 2, 3]
    assert [f["data"]["title"] for f in frames] == ["t1", "t2", "t3"]
    assert set(frames[0]) == {"seq", "type", "stream_id", "occurred_at", "data"}


async def test_a_viewer_catching_up_gets_later_events_after_its_start_point_exactly_once():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    await deliver(target, message(1), message(2), message(3))
    assert socket.writes == []  # held while its snapshot is being built
    viewer.sent_seq = 2  # its snapshot covered up to seq 2
    target.go_live(viewer)
    await deliver(target, message(4))
    assert [f["seq"] for f in socket.frames()] == [3, 4]


async def test_a_live_viewer_whose_snapshot_covers_part_of_a_burst_gets_only_the_rest():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    for msg in (message(1), message(2)):
        await target._on_message(msg)  # received, not flushed yet
    viewer.sent_seq = 2
    target.go_live(viewer)
    await deliver(target, message(3))
    assert [f["seq"] for f in socket.frames()] == [3]


async def test_viewer_bookkeeping_events_are_not_sent_to_viewers():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    target.go_live(viewer)
    await deliver(target, message(1, "viewer.joined"), message(2))
    assert [f["seq"] for f in socket.frames()] == [2]
    assert target.last_seq == 2


async def test_only_events_from_the_service_that_publishes_them_reach_viewers():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    target.go_live(viewer)
    not_json = message(5)
    not_json.data = b"{nope"
    await deliver(
        target,
        message(1, "chat.posted", producer="products"),  # a products credential, say, leaked
        message(2, "product.featured", producer=None),
        message(3, "stream.updated", type="stream.ended"),  # not its subject's type
        message(4, "chat.posted"),
        not_json,
        message(6, "viewers.updated"),
    )
    assert [(f["seq"], f["type"]) for f in socket.frames()] == [
        (4, "chat.posted"),
        (6, "viewers.updated"),
    ]
    assert target.last_seq == 6


async def test_an_event_received_twice_after_a_consumer_reset_is_sent_once():
    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    target.go_live(viewer)
    await deliver(target, message(1), message(2), message(2), message(1))
    assert [f["seq"] for f in socket.frames()] == [1, 2]


async def test_a_socket_that_cannot_keep_up_is_dropped_and_the_others_go_on():
    target = hub()
    slow, fast = RecordingSocket(buffered=50_000), RecordingSocket()
    viewers = [Viewer(s, max_buffer=10_000) for s in (slow, fast)]  # type: ignore[arg-type]
    for viewer in viewers:
        target.add(viewer)
        target.go_live(viewer)
    await deliver(target, message(1))
    await deliver(target, message(2))
    assert slow.dropped_with == CLOSE_TRY_AGAIN
    assert target.live == {viewers[1]}
    assert [f["seq"] for f in fast.frames()] == [1, 2]


async def test_a_viewer_holding_too_many_events_while_catching_up_is_dropped():
    target, socket = hub(max_held=2), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    target.add(viewer)
    await deliver(target, message(1), message(2), message(3))
    assert socket.dropped_with == CLOSE_TRY_AGAIN
    assert target.viewer_count == 0


async def test_a_big_room_is_written_in_chunks_and_every_socket_keeps_the_order(monkeypatch):
    from services.gateway import hub as hubs

    monkeypatch.setattr(hubs, "FLUSH_CHUNK", 2)
    target = hub()
    sockets = [RecordingSocket() for _ in range(5)]
    for socket in sockets:
        viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
        target.add(viewer)
        target.go_live(viewer)
    await target._on_message(message(1))
    await asyncio.sleep(0)  # the first chunk is written; the rest waits for later turns
    assert [len(s.writes) for s in sockets].count(1) == 2
    await target._on_message(message(2))  # arrives while the first batch is still going out
    for _ in range(10):
        await asyncio.sleep(0)
    assert all([f["seq"] for f in s.frames()] == [1, 2] for s in sockets)


def posted(seq: int, message_id: str, at: datetime) -> Msg:
    msg = message(seq, "chat.posted")
    envelope = orjson.loads(msg.data)
    envelope["data"] = {"message": {"id": message_id, "created_at": at.isoformat()}}
    msg.data = orjson.dumps(envelope)
    return msg


async def test_a_viewer_is_not_sent_again_the_messages_its_snapshot_showed():
    from datetime import timedelta

    from services.gateway.snapshot import AlreadyShown

    target, socket = hub(), RecordingSocket()
    viewer = Viewer(socket, max_buffer=10_000)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    shown = [
        {"id": "m1", "created_at": now.isoformat()},
        {"id": "m2", "created_at": now.isoformat()},
    ]
    viewer.already = AlreadyShown.of({"recent_messages": shown})
    target.add(viewer)
    await deliver(target, posted(1, "m1", now))  # held while catching up
    target.go_live(viewer)
    later = now + timedelta(seconds=5)
    await deliver(target, posted(2, "m2", now), posted(3, "m3", later), message(4))
    assert [f["seq"] for f in socket.frames()] == [3, 4]
    assert viewer.already is None  # the chat moved past the snapshot: back to the shared bytes


async def test_a_crowd_joining_a_busy_live_shares_a_snapshot_build_at_a_time():
    """Events keep coming while each snapshot is built (a busy chat): the viewers added before a
    build started all take it, whatever came since, and see every later event exactly once."""
    target = hub()
    builds = 0

    async def build() -> dict:
        nonlocal builds
        builds += 1
        await deliver(target, message(target.last_seq + 1))  # the live moves on meanwhile
        await asyncio.sleep(0.01)
        return {"built": builds}

    async def join(socket: RecordingSocket) -> None:
        viewer = Viewer(socket, max_buffer=1_000_000)  # type: ignore[arg-type]
        target.add(viewer)
        seq, _ = await target.snapshot(build, viewer=viewer)
        viewer.sent_seq = seq
        target.go_live(viewer)

    first = [RecordingSocket() for _ in range(50)]
    joining = [asyncio.create_task(join(socket)) for socket in first]
    await asyncio.sleep(0.005)  # the first build is under way: these come after it started
    second = [RecordingSocket() for _ in range(50)]
    joining += [asyncio.create_task(join(socket)) for socket in second]
    await asyncio.gather(*joining)
    await deliver(target, message(target.last_seq + 1))
    assert builds == 2
    for socket in first + second:
        seqs = [f["seq"] for f in socket.frames()]
        assert seqs == list(range(seqs[0], target.last_seq + 1))  # no gap, no repeat
