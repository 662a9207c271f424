"""NATS JetStream connection and the `LIVE` stream every event is stored in."""

import asyncio
import logging
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
MAX_AGE_S = 7 * 24 * 3600.0
MAX_BYTES = 2 * 1024**3


@dataclass
class Bus:
    nc: NATS
    js: JetStreamContext
    stream: str


async def connect(url: str, *, name: str, stream: str, subject_root: str) -> Bus:
    """Connect (retrying for ever once connected) and make sure the event stream exists."""
    nc = await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        error_cb=_log_error,
        disconnected_cb=_log_disconnected,
    )
    js = nc.jetstream(timeout=5)
    await ensure_stream(js, stream=stream, subject_root=subject_root)
    return Bus(nc=nc, js=js, stream=stream)


async def ensure_stream(js: JetStreamContext, *, stream: str, subject_root: str) -> None:
    config = StreamConfig(
        name=stream,
        subjects=[f"{subject_root}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=MAX_AGE_S,
        max_bytes=MAX_BYTES,
    )
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created JetStream stream %s on %s.>", stream, subject_root)


async def publish_event(
    bus: Bus, *, subject: str, body: bytes, event_id: object, headers: dict | None = None
) -> None:
    """Store one event in the stream under its id as `Nats-Msg-Id`: JetStream drops a re-publish
    of the same event within its duplicate window, so a retry must keep the id it was given."""
    await bus.js.publish(
        subject, body, stream=bus.stream, headers={**(headers or {}), "Nats-Msg-Id": str(event_id)}
    )


async def _log_error(error: Exception) -> None:
    log.warning("nats: %s", error)


async def _log_disconnected() -> None:
    log.warning("nats: disconnected, reconnecting")


class BusProvider:
    """Connects on first use and keeps one connection; a service starts even while NATS is away."""

    def __init__(self, url: str, *, name: str, stream: str, subject_root: str) -> None:
        self.url = url
        self.name = name
        self.stream = stream
        self.subject_root = subject_root
        self._bus: Bus | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Bus:
        if self._bus is None:
            async with self._lock:
                if self._bus is None:
                    self._bus = await connect(
                        self.url, name=self.name, stream=self.stream, subject_root=self.subject_root
                    )
        return self._bus

    @property
    def connected(self) -> bool:
        return self._bus is not None and self._bus.nc.is_connected

    async def close(self, *, drain_timeout_s: float = 2.0) -> None:
        """Drain (deliver what is pending), but not for ever: then just close."""
        if self._bus is None:
            return
        nc, self._bus = self._bus.nc, None
        try:
            await asyncio.wait_for(nc.drain(), drain_timeout_s)
        except Exception as error:  # a timeout, or a connection already gone
            log.warning("nats: no clean drain (%s); closing", error or type(error).__name__)
            await nc.close()
