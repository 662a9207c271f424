"""NATS JetStream connection and the `LIVE` stream every event is stored in."""

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
MAX_AGE_S = 7 * 24 * 3600.0
MAX_BYTES = 2 * 1024**3
DEAD_LETTER_MAX_BYTES = 1024**3  # DEAD_LETTER_MAX_BYTES: the dead-letter stream's bound
PING_INTERVAL_S = 10.0
MAX_OUTSTANDING_PINGS = 2


@dataclass
class Bus:
    nc: NATS
    js: JetStreamContext
    stream: str
    replicas: int = 1  # the stream's, and so of the streams made beside it (dead letters)
    dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES


def server_urls(url: str) -> list[str]:
    """NATS_URL may list a cluster's servers, comma-separated."""
    return [server.strip() for server in url.split(",") if server.strip()]


async def connect(
    url: str,
    *,
    name: str,
    stream: str,
    subject_root: str,
    replicas: int | None = None,
    dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES,
    options: Mapping[str, Any] | None = None,
) -> Bus:
    """Connect (retrying for ever once connected) and make sure the event stream exists.
    `url` may list a cluster's servers, comma-separated; `options` are the credentials and TLS
    (`BusSettings.nats_options()`)."""
    nc = await nats.connect(
        server_urls(url),
        **(options or {}),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        # A silent partition (no FIN, no RST) is noticed within about 30 s, then reconnected.
        ping_interval=PING_INTERVAL_S,
        max_outstanding_pings=MAX_OUTSTANDING_PINGS,
        error_cb=_log_error,
        disconnected_cb=_log_disconnected,
    )
    try:
        js = nc.jetstream(timeout=5)
        replicas = await ensure_stream(
            js, stream=stream, subject_root=subject_root, replicas=replicas
        )
    except BaseException:  # refused or cancelled: no connection left reconnecting for ever
        with contextlib.suppress(Exception):
            await asyncio.shield(nc.close())
        raise
    return Bus(
        nc=nc, js=js, stream=stream, replicas=replicas, dead_letter_max_bytes=dead_letter_max_bytes
    )


async def ensure_stream(
    js: JetStreamContext, *, stream: str, subject_root: str, replicas: int | None = None
) -> int:
    """Create the event stream, or bring an existing one to `replicas` (JETSTREAM_REPLICAS: 3
    on a 3-node cluster, so the stream survives a node). Returns the stream's replicas."""
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
    return await ensure_stream_config(js, config, replicas=replicas)


async def ensure_stream_config(
    js: JetStreamContext,
    config: StreamConfig,
    *,
    replicas: int | None = None,
    follow: Collection[str] = (),
) -> int:
    """Create the stream `config` describes with `replicas`, or bring an existing one to them
    and to the fields named in `follow`. None leaves an existing stream's replicas as they are
    (and creates one with 1), so a tool without JETSTREAM_REPLICAS never shrinks a cluster's
    stream. A count the servers cannot hold (3 on a single server) is refused by NATS. Returns
    the stream's replicas."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config.evolve(num_replicas=replicas or 1))
        log.info("created JetStream stream %s on %s (R%d)",
                 config.name, ",".join(config.subjects or []), replicas or 1)  # fmt: skip
        return replicas or 1
    current = info.config.num_replicas or 1
    wanted = {"num_replicas": replicas} if replicas is not None and current != replicas else {}
    wanted |= {
        field: getattr(config, field)
        for field in follow
        if getattr(info.config, field) != getattr(config, field)
    }
    if wanted:
        await js.update_stream(info.config.evolve(**wanted))
        log.info("JetStream stream %s updated: %s", config.name, wanted)
    return replicas if "num_replicas" in wanted and replicas is not None else current


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

    def __init__(
        self,
        url: str,
        *,
        name: str,
        stream: str,
        subject_root: str,
        replicas: int | None = None,
        dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.options = options
        self.name = name
        self.stream = stream
        self.subject_root = subject_root
        self.replicas = replicas
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self._bus: Bus | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Bus:
        if self._bus is None:
            async with self._lock:
                if self._bus is None:
                    self._bus = await connect(
                        self.url, name=self.name, stream=self.stream,
                        subject_root=self.subject_root, replicas=self.replicas,
                        dead_letter_max_bytes=self.dead_letter_max_bytes,
                        options=self.options,
                    )  # fmt: skip
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
