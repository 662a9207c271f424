"""Thousands of cheap websocket viewers in their own process, so we measure the server, not us.

Why not the `websockets` client: at 5,000 sockets x 50 events/s a full client (a task and frame
objects per socket, UTF-8 checks) costs more CPU than the gateway it measures. Each viewer here is
a bare asyncio Protocol on uvloop: it sends the upgrade request itself, then walks frame headers
on the byte stream to count frames, skipping payloads unread. Only a sample of viewers decodes
its frames, to measure latency against the event's `occurred_at` (same machine, same clock).

While measuring, viewers may also watch for one frame type on every socket: a non-sampled viewer
then reads only the first bytes of each text frame (`{"seq":N,"type":"…"`, as the gateway writes
it) with a bytes search, no JSON, to count those frames and, when stamping, note each one's
receive time by `seq`.
"""

import asyncio
import base64
import contextlib
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from websockets.frames import Frame, Opcode

TEXT, CLOSE, PING = 0x1, 0x8, 0x9
LATENCY_TYPE = "stream.updated"  # the events the publisher sends; others only get counted
PEEK = 64  # bytes of a frame enough to hold `{"seq":<up to 20 digits>,"type":"<watched type>"`
SEQ_AT = len(b'{"seq":')
TYPE_KEY = b',"type":"'


def raise_open_files_limit() -> int:
    """Every socket is a file descriptor: take the hard limit (root may go higher)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


@dataclass
class Stats:
    """What the viewers of this process saw while measuring."""

    measuring: bool = False
    frames: int = 0  # event frames: every text frame after a viewer's first (its snapshot)
    latencies_ms: list[float] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)  # of the sampled viewers' frames
    dropped: int = 0  # sockets the server closed or lost after they were ready
    close_codes: Counter[int] = field(default_factory=Counter)
    latency_types: frozenset[str] = frozenset({LATENCY_TYPE})  # sampled frames timed
    # One frame type watched on every socket (empty: none); `watch_tag` is how its bytes end.
    watch: str = ""
    watch_tag: bytes = b""
    watched: int = 0  # frames of the watched type, every socket
    stamp: bool = False  # note the receive time of each watched frame, by seq
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    # What the sampled viewers read in a watched frame's data at `key_path`, by seq.
    key_path: tuple[str, ...] = ()
    keys: dict[int, str] = field(default_factory=dict)


class Viewer(asyncio.Protocol):
    """One websocket viewer: handshake, then frame counting (and decoding, when sampled)."""

    def __init__(self, request: bytes, stats: Stats, *, sampled: bool) -> None:
        self.request = request
        self.stats = stats
        self.sampled = sampled
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.head = b""  # the HTTP response until the upgrade is done
        self.upgraded = False
        self.tail = b""  # an incomplete frame header (or, when decoding, frame) kept for later
        self.skip = 0  # bytes of the current frame's payload still to come, unread
        self.leaving = False  # we close it: not a drop

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the snapshot: {exc}"))
        elif not self.leaving:
            self.stats.dropped += 1

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                status = self.head.split(b"\r\n", 1)[0].decode(errors="replace")
                self.ready.set_exception(ConnectionError(f"upgrade refused: {status}"))
                self.transport.close()
                return
            self.upgraded, data, self.head = True, self.head[end + 4 :], b""
        self._walk(data)

    def _walk(self, data: bytes) -> None:
        """Count the frames in `data`; payloads are skipped unless this viewer is sampled."""
        n = len(data)
        if self.skip >= n:
            self.skip -= n
            return
        pos, self.skip = self.skip, 0
        if self.tail:
            data, pos = self.tail + data[pos:], 0
            n = len(data)
        while n - pos >= 2:
            opcode, length, head = data[pos] & 0x0F, data[pos + 1] & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if opcode == TEXT and not self.sampled:
                stats = self.stats
                if stats.watch and stats.measuring and self.ready.done():
                    start = pos + head
                    peek = start + min(length, PEEK)
                    if peek > n:
                        break  # its first bytes wait in the tail
                    self._peeked(data, start, peek)
                else:
                    self._counted(None)
            elif end > n:
                break  # decoded frames (sampled, ping, close) wait until they are whole
            elif opcode == TEXT:
                self._counted(data[pos + head : end])
            elif opcode == PING:
                pong = Frame(Opcode.PONG, data[pos + head : end]).serialize(mask=True)
                self.transport.write(pong)
            elif opcode == CLOSE:
                code = int.from_bytes(data[pos + head : pos + head + 2], "big") if length else 1005
                self.stats.close_codes[code] += 1
                self.transport.close()
                return
            pos = end
        if pos > n:
            self.skip, self.tail = pos - n, b""
        else:
            self.tail = data[pos:]

    def _counted(self, payload: bytes | None) -> None:
        if not self.ready.done():
            self.ready.set_result(None)  # the first frame is the snapshot
            return
        stats = self.stats
        if not stats.measuring:
            return
        stats.frames += 1
        if payload is None:
            return
        now = time.time()
        frame = orjson.loads(payload)
        kind = frame["type"]
        stats.types[kind] += 1
        if kind in stats.latency_types:
            sent = datetime.fromisoformat(frame["occurred_at"]).timestamp()
            stats.latencies_ms.append((now - sent) * 1000)
        if kind == stats.watch:
            stats.watched += 1
            if stats.stamp:
                stats.arrivals.setdefault(frame["seq"], []).append(now)
            if stats.key_path:
                value: Any = frame["data"]
                for name in stats.key_path:
                    value = value.get(name) if isinstance(value, dict) else None
                if value is not None:
                    stats.keys[frame["seq"]] = str(value)

    def _peeked(self, data: bytes, start: int, stop: int) -> None:
        """An event frame seen by its first bytes only: counted, and noted if watched."""
        stats = self.stats
        stats.frames += 1
        at = data.find(TYPE_KEY, start, stop)
        if at < 0 or not data.startswith(stats.watch_tag, at + len(TYPE_KEY)):
            return
        stats.watched += 1
        if stats.stamp:
            stats.arrivals.setdefault(int(data[start + SEQ_AT : at]), []).append(time.time())

    def leave(self) -> None:
        self.leaving = True
        if self.transport is not None:
            self.transport.abort()


def upgrade_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Audience:
    """The viewers of this process and what they saw."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.viewers: list[Viewer] = []
        self.cpu_at_start = 0.0

    async def open(
        self, *, host: str, port: int, path: str, count: int, samples: int, in_flight: int = 200
    ) -> dict[str, Any]:
        """Open `count` viewers, `in_flight` at a time, each until its snapshot arrived."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(in_flight)
        every = max(1, count // max(samples, 1))
        errors: Counter[str] = Counter()
        started = time.monotonic()

        async def one(index: int) -> None:
            async with gate:
                viewer = Viewer(
                    upgrade_request(host, port, path), self.stats, sampled=index % every == 0
                )
                try:
                    await loop.create_connection(lambda: viewer, host, port)
                    await asyncio.wait_for(viewer.ready, 60)
                    self.viewers.append(viewer)
                except (OSError, TimeoutError) as error:
                    errors[f"{type(error).__name__}: {error}"[:160]] += 1
                    viewer.leave()

        await asyncio.gather(*(one(i) for i in range(count)))
        return {
            "opened": len(self.viewers),
            "failed": sum(errors.values()),
            "errors": dict(errors.most_common(3)),
            "seconds": time.monotonic() - started,
        }

    def start(
        self,
        *,
        latency_types: tuple[str, ...] = (LATENCY_TYPE,),
        watch: str = "",
        stamp: bool = False,
        key_path: tuple[str, ...] = (),
    ) -> None:
        """Count from now on; time `latency_types` on sampled viewers; watch `watch` on all."""
        self.stats = replace_stats(self.stats, measuring=True)
        self.stats.latency_types = frozenset(latency_types)
        self.stats.watch, self.stats.watch_tag = watch, f'{watch}"'.encode()
        self.stats.stamp, self.stats.key_path = stamp, tuple(key_path)
        for viewer in self.viewers:
            viewer.stats = self.stats
        self.cpu_at_start = time.process_time()

    def stop(self) -> dict[str, Any]:
        stats = self.stats
        stats.measuring = False
        return {
            "frames": stats.frames,
            "latencies_ms": stats.latencies_ms,
            "types": dict(stats.types),
            "dropped": stats.dropped,
            "close_codes": dict(stats.close_codes),
            "cpu_s": time.process_time() - self.cpu_at_start,
            "watched": stats.watched,
            "arrivals": stats.arrivals,
            "keys": stats.keys,
        }

    def close(self) -> None:
        for viewer in self.viewers:
            viewer.leave()
        self.viewers.clear()


def replace_stats(old: Stats, *, measuring: bool) -> Stats:
    """Fresh counters; drops seen before measuring still count (the socket is gone either way)."""
    return Stats(measuring=measuring, dropped=old.dropped, close_codes=old.close_codes)
