"""A live's events in one gateway process, fanned out to every websocket watching it.

Each event is turned into frame bytes once. Events that arrive together are flushed together: a
viewer that is up to date gets them in one write. A viewer still receiving its snapshot or replay
keeps later frames aside (bounded) and gets them once it has caught up, so it sees every event
after its starting point exactly once, in order.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from chassis.errors import Throttled
from chassis.telemetry import message_span
from contracts import event_type_of, stream_subject
from contracts.producers import may_publish
from services.gateway.rawsocket import RawSocket, text_frame
from services.gateway.snapshot import AlreadyShown, PostedMessage

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013  # "try again later": reconnect (with since=<last seq> if there was one)
# Bookkeeping for analytics, not for viewers: these carry other viewers' session and cart ids.
HIDDEN_EVENT_PREFIXES = ("viewer.", "product.clicked", "cart.")
FINAL_EVENTS = ("stream.ended", "stream.deleted")  # after these, viewers may not join any more
# The fan-out's work, counted per chunk of sockets (not per write: the hot path stays light).
FRAMES_SENT = Counter("vitrine_ws_frames_sent_total", "Frames written to viewers' sockets")
BYTES_SENT = Counter("vitrine_ws_bytes_sent_total", "Bytes written to viewers' sockets")
SLOW_DROPPED = Counter("vitrine_ws_slow_dropped_total", "Sockets closed 1013 for falling behind")
REFUSED = Counter(
    "vitrine_gateway_events_refused_total",
    "Events on a live's subject not forwarded to viewers: malformed, or not from their producer",
    ["reason"],
)
_refusals = Throttled(log)

# Sockets written per turn of the event loop: between chunks, the gateway's HTTP requests and
# other lives get their turn, so a big room never holds the whole process up.
FLUSH_CHUNK = 500

Frames = list[tuple[int, bytes]]
SNAPSHOT_MAX_AGE_S = 2.0
MAX_POSTED = 5_000  # chat messages remembered per live, to tell a snapshot's own from new ones


def for_viewers(event_type: str, data: bytes, *, count: bool = True) -> dict[str, Any] | None:
    """The stored event's envelope if viewers are to see it: not bookkeeping, and published by
    the service that publishes its type, under its own type. None for the rest, which is
    dropped (counted, and logged now and then)."""
    if event_type.startswith(HIDDEN_EVENT_PREFIXES):
        return None
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict) or envelope.get("type") != event_type:
        if count:
            _refuse("malformed", "not an envelope of its subject's type", event_type)
        return None
    if not may_publish(envelope.get("producer"), event_type):
        if count:
            producer = str(envelope.get("producer"))[:32]
            _refuse("producer", f"not from the publisher of its type ({producer!r})", event_type)
        return None
    return envelope


def _refuse(reason: str, why: str, event_type: str) -> None:
    REFUSED.labels(reason=reason).inc()
    _refusals.warning("an event not forwarded to viewers, %s: %s", why, event_type[:64])


def event_frame(seq: int, envelope: dict[str, Any]) -> bytes:
    """The websocket frame of one stored event (DESIGN.md §3)."""
    return text_frame(
        orjson.dumps(
            {
                "seq": seq,
                "type": envelope["type"],
                "stream_id": envelope["stream_id"],
                "occurred_at": envelope["occurred_at"],
                "data": envelope["data"],
            }
        )
    )


class Viewer:
    """A websocket watching one live: where it is in the event sequence and what waits for it."""

    __slots__ = ("already", "arrived_after", "held", "max_buffer", "sent_seq", "socket")

    def __init__(self, socket: RawSocket, *, max_buffer: int) -> None:
        self.socket = socket
        self.max_buffer = max_buffer
        self.sent_seq = 0
        self.held: Frames | None = []  # frames kept aside while catching up; None once live
        self.already: AlreadyShown | None = None  # chat messages its snapshot showed
        self.arrived_after = 0  # the hub's snapshot builds started before it was added

    def unshown(self, frames: Frames, posted: dict[int, PostedMessage]) -> Frames:
        """`frames` without the `chat.posted` of messages its snapshot already showed."""
        if self.already is None:
            return frames
        kept: Frames = []
        for seq, frame in frames:
            if (message := posted.get(seq)) is not None and self.already is not None:
                if self.already.shows(message):
                    continue
                if self.already.passed(message):
                    self.already = None
            kept.append((seq, frame))
        return kept

    def send(self, data: bytes) -> bool:
        """Write frames; drop the socket if its queue is over the limit. False once dropped."""
        if self.socket.is_closing:
            return False
        self.socket.write(data)
        if self.socket.buffered() > self.max_buffer:
            self.socket.drop(CLOSE_TRY_AGAIN, "too slow: reconnect with since=<last seq>")
            SLOW_DROPPED.inc()
            return False
        return True

    def send_frames(self, frames: Frames) -> bool:
        due = [frame for seq, frame in frames if seq > self.sent_seq]
        if not due:
            return True
        self.sent_seq = frames[-1][0]
        return self.send(b"".join(due))


class StreamHub:
    """The events of one live, for the viewers of this process."""

    def __init__(
        self,
        *,
        stream_id: str,
        js: JetStreamContext,
        jetstream_stream: str,
        subject_root: str,
        last_seq: int,
        max_held: int,
        on_final: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.stream_id = stream_id
        self.on_final = on_final
        self.js = js
        self.jetstream_stream = jetstream_stream
        self.subject = stream_subject(stream_id, root=subject_root)
        self.subject_root = subject_root
        self.last_seq = last_seq  # every event of this live up to here has been received
        self.visible_seq = last_seq  # the last one viewers see (not viewer.* bookkeeping)
        self.max_held = max_held
        self.live: set[Viewer] = set()
        self.catching_up: set[Viewer] = set()
        self._batch: Frames = []
        self._flush_scheduled = False
        self._flushing = False  # a flush is still going through its chunks of sockets
        self._sub: Any = None
        self._loop = asyncio.get_running_loop()
        self._snapshot_lock = asyncio.Lock()
        # (when, visible_seq it was built at, its seq, data, build number): reusable until a
        # visible event, or for a moment while none comes (the services may have moved on
        # without one reaching us, the bus away), and by every viewer added before its build.
        self._snapshot: tuple[float, int, int, dict[str, Any], int] | None = None
        self._builds = 0  # snapshot builds started
        # The chat messages of recent `chat.posted` frames, by seq (bounded).
        self.posted: dict[int, PostedMessage] = {}

    async def snapshot(
        self, build: Callable[[], Awaitable[dict[str, Any] | None]], *, viewer: Viewer
    ) -> tuple[int, dict[str, Any]] | None:
        """(seq, data): the live as of `seq` for a viewer catching up, None when there is no such
        live. One build at a time, shared: by the viewers who join until the next visible event,
        and by every viewer added before it started, whatever came since (they hold every event
        after their arrival, so after its `seq`), so a crowd joining a busy live costs one build
        at a time, not one each."""
        async with self._snapshot_lock:
            cached = self._snapshot
            if cached is not None:
                built_at, built_seen, built_seq, built_data, number = cached
                fresh = time.monotonic() - built_at < SNAPSHOT_MAX_AGE_S
                if number > viewer.arrived_after or (fresh and built_seen == self.visible_seq):
                    return built_seq, built_data
            self._builds += 1
            number, built_at = self._builds, time.monotonic()
            visible_seq, seq = self.visible_seq, self.last_seq
            data = await build()
            if data is None:
                return None
            self._snapshot = (built_at, visible_seq, seq, data, number)
            return seq, data

    @property
    def viewer_count(self) -> int:
        return len(self.live) + len(self.catching_up)

    async def start(self) -> None:
        self._sub = await self.js.subscribe(
            self.subject,
            stream=self.jetstream_stream,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1
            ),
            pending_msgs_limit=100_000,
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        with message_span(
            "process", msg.subject, msg.headers,
            **{"consumer.group.name": "fanout"},
        ):  # fmt: skip
            self._take(msg)

    def _take(self, msg: Msg) -> None:
        """The event into this live's next flush (or left out: bookkeeping, a replay)."""
        seq = msg.metadata.sequence.stream
        if seq <= self.last_seq:
            return  # an ordered consumer reset may deliver again what we had
        self.last_seq = seq
        event_type = event_type_of(msg.subject, root=self.subject_root)
        envelope = for_viewers(event_type, msg.data)
        if envelope is None:
            return
        if event_type in FINAL_EVENTS:
            self.on_final(self.stream_id)
        self.visible_seq = seq
        if event_type == "chat.posted":
            self._remember_posted(seq, envelope)
        self._batch.append((seq, event_frame(seq, envelope)))
        if not self._flush_scheduled and not self._flushing:
            self._flush_scheduled = True
            # Flushing on the next loop turn lets a burst of messages go out in one write.
            self._loop.call_soon(self._flush)

    def _remember_posted(self, seq: int, envelope: dict[str, Any]) -> None:
        message = (envelope.get("data") or {}).get("message") or {}
        if isinstance(message.get("id"), str) and isinstance(message.get("created_at"), str):
            if len(self.posted) >= MAX_POSTED:
                del self.posted[next(iter(self.posted))]
            self.posted[seq] = PostedMessage(message["id"], message["created_at"])

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if not batch:
            return
        dropped = []
        for viewer in self.catching_up:
            assert viewer.held is not None
            viewer.held.extend(batch)
            if len(viewer.held) > self.max_held:
                viewer.socket.drop(CLOSE_TRY_AGAIN, "too slow: reconnect with since=<last seq>")
                dropped.append(viewer)
        for viewer in dropped:
            self.remove(viewer)
        self._flushing = True
        data = b"".join(frame for _, frame in batch)
        self._write_chunk(list(self.live), 0, batch, data)

    def _write_chunk(self, viewers: list[Viewer], start: int, batch: Frames, data: bytes) -> None:
        """Write one batch to viewers[start:start + FLUSH_CHUNK], then schedule the rest. The next
        batch waits until this one reached every socket, so each socket keeps the order."""
        first_seq, last_seq = batch[0][0], batch[-1][0]
        dropped = []
        whole = 0  # sockets that got the whole batch (the others, a part: not counted)
        for viewer in viewers[start : start + FLUSH_CHUNK]:
            if viewer.sent_seq < first_seq and viewer.already is None:
                viewer.sent_seq = last_seq
                sent = viewer.send(data)
                whole += sent
            else:  # joined on a snapshot that already covers part of this batch
                sent = viewer.send_frames(viewer.unshown(batch, self.posted))
            if not sent:
                dropped.append(viewer)
        FRAMES_SENT.inc(whole * len(batch))
        BYTES_SENT.inc(whole * len(data))
        for viewer in dropped:
            self.remove(viewer)
        if start + FLUSH_CHUNK < len(viewers):
            self._loop.call_soon(self._write_chunk, viewers, start + FLUSH_CHUNK, batch, data)
            return
        self._flushing = False
        if self._batch and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def add(self, viewer: Viewer) -> None:
        """Start keeping this live's new events for a viewer that is catching up."""
        viewer.arrived_after = self._builds
        self.catching_up.add(viewer)

    def go_live(self, viewer: Viewer) -> None:
        """The viewer has its snapshot or replay: send what was held and stream from now on."""
        self.catching_up.discard(viewer)
        held, viewer.held = viewer.held or [], None
        if viewer.send_frames(viewer.unshown(held, self.posted)) and not viewer.socket.is_closing:
            self.live.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        self.live.discard(viewer)
        self.catching_up.discard(viewer)
