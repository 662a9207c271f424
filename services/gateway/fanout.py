"""One JetStream subscription per live, fanned out to every websocket watching it: the hubs of this
process (`hub.py`), started with a live's first viewer and stopped after its last, and the replay
of what a reconnecting viewer missed.
"""

import asyncio
import contextlib
import contextvars
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import Gauge

from contracts import event_type_of
from services.gateway.hub import Frames, StreamHub, Viewer, event_frame, for_viewers

HUBS = Gauge("vitrine_ws_live_hubs", "Lives this gateway process follows (one subscription each)")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def _give_memory_back() -> None:
    """A live's last viewers are gone: the memory their sockets held goes back to the system.
    Without it glibc keeps the freed pages (measured: 5,000 sockets and a flood, then closed: RSS
    stayed at 324 MiB, 235 MiB with it; 108 MiB before they came; no object of theirs is left,
    the rest is the allocators' fragments)."""
    gc.collect()  # the sockets' cycles (a closed connection's exception and its frames) first
    if (trim := _malloc_trim()) is not None:
        trim(0)


class Fanout:
    """The hubs of this process: started with a live's first viewer, stopped after its last."""

    def __init__(
        self,
        *,
        js_provider: Callable[[], Awaitable[JetStreamContext]],
        jetstream_stream: str,
        subject_root: str,
        linger_s: float,
        max_held: int,
        on_final: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.js_provider = js_provider
        self.on_final = on_final
        self.jetstream_stream = jetstream_stream
        self.subject_root = subject_root
        self.linger_s = linger_s
        self.max_held = max_held
        self.hubs: dict[str, StreamHub] = {}
        HUBS.set_function(lambda: len(self.hubs))
        self._starting: dict[str, asyncio.Task[StreamHub]] = {}
        self._stoppers: dict[str, asyncio.TimerHandle] = {}

    async def hub(self, stream_id: str) -> StreamHub:
        if (stopper := self._stoppers.pop(stream_id, None)) is not None:
            stopper.cancel()
        if (hub := self.hubs.get(stream_id)) is not None:
            return hub
        task = self._starting.get(stream_id)
        if task is None:
            # In a context of its own: the hub outlives the viewer whose join started it, and
            # must not carry that viewer's trace (or request) into every later event.
            task = asyncio.create_task(self._start(stream_id), context=contextvars.Context())
            self._starting[stream_id] = task
            # The task forgets itself, whichever waiter is cancelled meanwhile.
            task.add_done_callback(lambda _: self._starting.pop(stream_id, None))
        return await asyncio.shield(task)

    async def _start(self, stream_id: str) -> StreamHub:
        js = await self.js_provider()
        info = await js.stream_info(self.jetstream_stream)
        hub = StreamHub(
            stream_id=stream_id,
            js=js,
            jetstream_stream=self.jetstream_stream,
            subject_root=self.subject_root,
            last_seq=info.state.last_seq,
            max_held=self.max_held,
            on_final=self.on_final,
        )
        await hub.start()
        self.hubs[stream_id] = hub
        return hub

    def release(self, hub: StreamHub, viewer: Viewer) -> None:
        hub.remove(viewer)
        if hub.viewer_count == 0 and hub.stream_id not in self._stoppers:
            self._stoppers[hub.stream_id] = asyncio.get_running_loop().call_later(
                self.linger_s, lambda: asyncio.create_task(self._stop_if_idle(hub.stream_id))
            )

    async def _stop_if_idle(self, stream_id: str) -> None:
        self._stoppers.pop(stream_id, None)
        hub = self.hubs.get(stream_id)
        if hub is not None and hub.viewer_count == 0:
            del self.hubs[stream_id]
            await hub.stop()
            _give_memory_back()

    async def close(self) -> None:
        for stopper in self._stoppers.values():
            stopper.cancel()
        for hub in list(self.hubs.values()):
            await hub.stop()
        self.hubs.clear()

    async def replay(self, hub: StreamHub, *, since: int, upto: int) -> Frames | None:
        """This live's events in (since, upto] from JetStream; None when a snapshot is better
        (too many events, or some already gone from the stream)."""
        js = hub.js
        info = await js.stream_info(self.jetstream_stream)
        if since > info.state.last_seq or since + 1 < info.state.first_seq:
            return None
        if since >= upto:
            return []
        sub = await js.subscribe(
            hub.subject,
            stream=self.jetstream_stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=since + 1
            ),
        )
        try:
            consumer = await sub.consumer_info()
            # What is already in our queue counts too: the consumer may have started delivering.
            delivered = consumer.delivered.consumer_seq if consumer.delivered else 0
            pending = (consumer.num_pending or 0) + (delivered or 0)
            if pending > self.max_held:
                return None
            frames: Frames = []
            while pending:
                msg = await sub.next_msg(timeout=5)
                meta = msg.metadata
                seq = meta.sequence.stream
                if seq > upto:
                    break
                event_type = event_type_of(msg.subject, root=self.subject_root)
                # Counted (and logged) once, when the live path met it; not on every resume.
                envelope = for_viewers(event_type, msg.data, count=False)
                if envelope is not None:
                    frames.append((seq, event_frame(seq, envelope)))
                if seq == upto or meta.num_pending == 0:
                    break
            return frames
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
