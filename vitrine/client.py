"""Vitrine's events for external consumers (a data warehouse, a CRM): a durable JetStream
consumer of one live's events or every live's, each parsed into the `contracts/` models.

    async with await EventFeed.connect("nats://nats:4222", durable="warehouse") as feed:
        async for event in feed:
            await store(event.envelope.id, event.envelope.type, event.payload)
            await event.ack()

Delivery is at least once: an event that is not acknowledged (the process died, `ack_wait_s`
passed) comes again, so keep events by `event.envelope.id`. The durable remembers what was
acknowledged: a consumer that restarts with the same name goes on where it stopped. Events come
in the order they happened, except that one delivered again comes after those given out since;
`in_order=True` hands out one event at a time, so not even a redelivery reorders them (slower).

Only `nats-py` and `contracts` (pydantic) are needed: nothing of the services is imported.
"""

import logging
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ValidationError

from contracts import Envelope
from contracts.subjects import DEFAULT_ROOT

log = logging.getLogger(__name__)

DEFAULT_STREAM = "LIVE"
STREAM_NOT_FOUND = 10059  # JetStream's error code


@dataclass(frozen=True)
class Event:
    """One event as the consumer got it. `payload` is the typed model of `contracts/`, or None
    for a type or version this client does not know yet (a newer producer): the envelope and its
    raw `data` are still there. `seq` is the event's place in the stream, as on the websocket."""

    envelope: Envelope
    payload: BaseModel | None
    seq: int
    deliveries: int  # 1 the first time, more when it came again
    _msg: Msg

    async def ack(self) -> None:
        """Done with it: the durable never delivers it again."""
        await self._msg.ack()

    async def nak(self, *, delay_s: float | None = None) -> None:
        """Not now: deliver it again (after `delay_s`)."""
        await self._msg.nak(delay=delay_s)


def filter_subject(
    *, root: str = DEFAULT_ROOT, stream_id: UUID | str | None = None, types: Collection[str] = ()
) -> str:
    """The subject a consumer of these events filters on: one live's (`stream_id`) or every
    live's, one event type (`product.featured`, `product.>`) or all of them. Several types take
    every type of the lives and let the others through on the client (NATS 2.9 filters on one
    subject only)."""
    live = str(stream_id) if stream_id is not None else "*"
    if len(types) == 1:
        (only,) = types
        return f"{root}.{live}.{only}"
    return f"{root}.{live}.>"


def _wanted(event_type: str, types: Collection[str]) -> bool:
    if not types:
        return True
    for pattern in types:
        family, _, name = pattern.partition(".")
        if pattern == event_type or (name in ("*", ">") and event_type.startswith(family + ".")):
            return True
    return False


async def _bind_durable(js: JetStreamContext, *, stream: str, config: ConsumerConfig) -> None:
    """Create the durable, or find it as it was made: where it starts matters only the first
    time, the events it filters always."""
    assert config.durable_name is not None
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError as missing:
        if missing.err_code == STREAM_NOT_FOUND:
            raise LookupError(f"NATS holds no stream {stream!r} (JETSTREAM_STREAM)") from None
        await js.add_consumer(stream, config)
        return
    if info.config.filter_subject != config.filter_subject:
        raise ValueError(
            f"the durable {config.durable_name!r} reads {info.config.filter_subject}, not "
            f"{config.filter_subject}: give the new filter a new durable name"
        )


class EventFeed:
    """A durable pull consumer on Vitrine's event stream; iterate it for `Event`s."""

    def __init__(
        self, *, nc: NATS, js: JetStreamContext, stream: str, durable: str,
        types: Collection[str], batch: int, wait_s: float,
    ) -> None:  # fmt: skip
        self._nc = nc
        self._js = js
        self._stream = stream
        self.durable = durable
        self._types = tuple(types)
        self._batch = batch
        self._wait_s = wait_s
        self._sub: JetStreamContext.PullSubscription | None = None
        self._fetched: deque[Msg] = deque()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        durable: str,
        stream_id: UUID | str | None = None,
        types: Collection[str] = (),
        subject_root: str = DEFAULT_ROOT,
        stream: str = DEFAULT_STREAM,
        start: DeliverPolicy | datetime = DeliverPolicy.ALL,
        in_order: bool = False,
        ack_wait_s: float = 30.0,
        batch: int = 100,
        wait_s: float = 5.0,
        **connect_options: Any,
    ) -> Self:
        """Connect to NATS (`url` may list a cluster's servers, comma-separated; `connect_options`
        go to `nats.connect`: `user`/`password`, `user_credentials`, `tls`…) and bind the durable
        `durable`, creating it the first time. `start` says where a new durable begins: every
        event kept (`DeliverPolicy.ALL`), only new ones (`DeliverPolicy.NEW`), or those since a
        time; an existing durable goes on where it stopped. `start` and `in_order` are the
        durable's from its first connection."""
        if "user" in connect_options:  # the replies come to the user's own inbox (nats_auth)
            connect_options.setdefault("inbox_prefix", f"_INBOX_{connect_options['user']}")
        nc = await nats.connect(
            [server.strip() for server in url.split(",") if server.strip()], **connect_options
        )
        try:
            js = nc.jetstream()
            config = ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait_s,
                filter_subject=filter_subject(root=subject_root, stream_id=stream_id, types=types),
                max_ack_pending=1 if in_order else max(1000, batch * 10),
            )
            if isinstance(start, datetime):
                config.deliver_policy = DeliverPolicy.BY_START_TIME
                config.opt_start_time = start
            else:
                config.deliver_policy = start
            await _bind_durable(js, stream=stream, config=config)
            feed = cls(
                nc=nc, js=js, stream=stream, durable=durable, types=types,
                batch=1 if in_order else batch,
                wait_s=wait_s,
            )  # fmt: skip
            feed._sub = await js.pull_subscribe_bind(durable, stream=stream)
        except BaseException:
            await nc.close()
            raise
        return feed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect; the durable stays, with what was acknowledged."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        await self._nc.close()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while self._sub is not None:
            if not self._fetched:
                try:
                    self._fetched.extend(await self._sub.fetch(self._batch, timeout=self._wait_s))
                except NatsTimeout:  # nothing new meanwhile (FetchTimeoutError is one too)
                    continue
            # Taken off one by one: a loop left early leaves the rest for the next one.
            event = await self._event(self._fetched.popleft())
            if event is not None:
                yield event

    async def _event(self, msg: Msg) -> Event | None:
        try:
            envelope = Envelope.model_validate_json(msg.data)
        except ValidationError:
            # Not an event of Vitrine's: nothing could ever read it, so it is not asked for again.
            log.warning("not an event envelope on %s (stream seq %d): dropped",
                        msg.subject, msg.metadata.sequence.stream)  # fmt: skip
            await msg.term()
            return None
        if not _wanted(envelope.type, self._types):
            await msg.ack()
            return None
        try:
            payload: BaseModel | None = envelope.payload()
        except LookupError:
            payload = None
        except ValidationError:
            log.warning("event %s (%s v%d) does not match its model", envelope.id,
                        envelope.type, envelope.version)  # fmt: skip
            payload = None
        return Event(
            envelope=envelope,
            payload=payload,
            seq=msg.metadata.sequence.stream,
            deliveries=msg.metadata.num_delivered,
            _msg=msg,
        )
