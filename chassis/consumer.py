"""Durable JetStream consumers: explicit acks, each event handled once, resumable after restarts.

A service that needs another's facts keeps its own copy fed by events. `EventConsumer` pulls the
events of one family (e.g. every live's `stream.*`) from a durable consumer, runs the handler and
records the event id in the same transaction, then acknowledges. A redelivered event — the ack was
lost, the service restarted mid-batch — finds its id recorded and is only acknowledged again.

With `batched=True` a fetched batch is handled in one transaction (one commit for the lot, acks
after it); if any event of it fails, the batch is rolled back and handled again one event per
transaction, so a bad event holds back only itself (and, redelivered, goes on its own). Only for
handlers whose effects are all in the database: a rolled-back batch runs them again. Replicas
sharing the durable lock rows in batches side by side: `lock_order` sorts each batch (stably) by
the key the handler locks, so they take the locks in the same order instead of deadlocking.

Each event is parsed first (envelope and payload model): one that cannot be is poison, parked at
once, as is one whose handler raises `PoisonEvent`. A failing handler's event comes back later
each time and, once the handler has raised on `max_deliver` deliveries, is parked as a dead
letter, which an operator lists and replays. An outage (the database or a connection away) is
not the event's fault: the event comes back after a capped, growing delay and is never parked;
the consumer goes on with the others meanwhile (chassis.redelivery, chassis.dead_letters). An
event that kills the process on every delivery is redelivered until it is fixed (a known limit:
nothing counts deliveries before the handler, which would park its innocent fetch-mates).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import dead_letters
from chassis.bus import BusProvider
from chassis.cancellation import raise_if_cancelled
from chassis.dead_letters import Reason
from chassis.redelivery import (
    OutageTally,
    Redelivery,
    consumer_config,
    is_outage,
    update_existing,
)
from chassis.telemetry import message_span
from contracts import Envelope, event_type_of

log = logging.getLogger(__name__)

# What an operator pages on (dead letters: chassis.dead_letters): a consumer falling behind.
DELIVERED = Counter("vitrine_consumer_delivered_total", "Events delivered", ["consumer"])
REDELIVERED = Counter("vitrine_consumer_redelivered_total", "Events delivered again", ["consumer"])
ACKED = Counter("vitrine_consumer_acked_total", "Events handled and acknowledged", ["consumer"])
LAG = Gauge("vitrine_consumer_pending", "Events waiting for the consumer (JetStream)", ["consumer"])
LAG_EVERY_S = 15.0

# Events nak'd with a delay stay pending for the durable until they come back: room for many of
# them, so that failing (or outage-delayed) events cannot stop the deliveries of the others.
MIN_MAX_ACK_PENDING = 10_000

__all__ = ["EventConsumer", "PoisonEvent", "Redelivery", "parse"]

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
LockOrder = Callable[[Envelope], tuple[str, ...]]


class PoisonEvent(Exception):
    """Raised by a handler for an event it can never handle: it is parked at once, not retried.
    (Malformed events and unknown types or versions are found before the handler runs.)"""


def parse(data: bytes) -> Envelope:
    """The event's envelope, its payload checked against the model registered for its type
    and version: a ValidationError or LookupError here means no delivery could handle it."""
    envelope = Envelope.model_validate_json(data)
    envelope.payload()
    return envelope


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    """Ids of the events a service has handled, in the service's own schema."""
    return sa.Table(
        "processed_events",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


class EventConsumer:
    def __init__(
        self,
        *,
        bus: BusProvider,
        sessions: async_sessionmaker[AsyncSession],
        processed: sa.Table,
        durable: str,
        events: str,
        handler: Handler,
        subject_root: str,
        batch: int = 100,
        ack_wait_s: float = 30.0,
        redelivery: Redelivery = Redelivery(),
        batched: bool = False,
        lock_order: LockOrder | None = None,
        only: Collection[str] | None = None,
        max_ack_pending: int | None = None,
        from_now: bool = False,
    ) -> None:
        """`events` filters event types, e.g. `stream.>` or `product.featured`; `only`, when a
        consumer needs a few types of a family, lets the others through with a mere ack.
        `max_ack_pending` (by default 10 times `batch`, at least MIN_MAX_ACK_PENDING) bounds the
        events delivered and not yet acknowledged, those waiting out a retry delay included.
        `from_now`: created, the durable starts with the events stored since this consumer was
        made (not the stream's past; its position is kept from then on)."""
        self.bus = bus
        self.sessions = sessions
        self.processed = processed
        self.durable = durable
        self.subject = f"{subject_root}.*.{events}"
        self.handler = handler
        self.batch = batch
        self.ack_wait_s = ack_wait_s
        self.redelivery = redelivery
        self.batched = batched
        self.lock_order = lock_order
        self.only = frozenset(only) if only is not None else None
        self.subject_root = subject_root
        self.since = datetime.now(UTC) if from_now else None
        self.max_ack_pending = max_ack_pending or max(10 * batch, MIN_MAX_ACK_PENDING)
        self.outages = OutageTally(self.max_ack_pending)
        self.handled = 0

    async def run(self) -> None:
        """Consume for ever, reconnecting and resuming after any outage."""
        backoff = 0.2
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS or the database away: resume where we were
                raise_if_cancelled(error)
                log.warning(
                    "consumer %s: %s; retrying in %.1fs",
                    self.durable, dead_letters.describe(error), backoff,
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _config(self) -> ConsumerConfig:
        config = consumer_config(ack_wait_s=self.ack_wait_s, max_ack_pending=self.max_ack_pending)
        if self.since is not None:
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = self.since
        return config

    async def _consume(self) -> None:
        bus = await self.bus.get()
        await dead_letters.ensure_dead_letter_stream(
            bus.js, stream=bus.stream, replicas=bus.replicas, max_bytes=bus.dead_letter_max_bytes
        )
        await update_existing(
            bus.js, stream=bus.stream, durable=self.durable, wanted=self._config()
        )
        subscription = await bus.js.pull_subscribe(
            self.subject, durable=self.durable, stream=bus.stream, config=self._config()
        )
        replays = None
        try:
            replays = await dead_letters.serve_replays(
                bus.nc, stream=bus.stream, consumer=self.durable, replay=self.replay_dead_letter
            )
            lag_read = 0.0
            while True:
                raise_if_cancelled()
                if time.monotonic() - lag_read > LAG_EVERY_S:
                    lag_read = time.monotonic()
                    await self._read_lag(subscription)
                try:
                    messages = await subscription.fetch(self.batch, timeout=1)
                except (TimeoutError, FetchTimeoutError):
                    continue
                DELIVERED.labels(self.durable).inc(len(messages))
                REDELIVERED.labels(self.durable).inc(
                    sum(1 for m in messages if (m.metadata.num_delivered or 1) > 1)
                )
                if self.only is not None:
                    messages = [message for message in messages if await self._wanted(message)]
                if self.batched:
                    messages = await self._handle_batch(messages)
                for message in messages:
                    await self.handle(message)
        finally:
            # Otherwise closing the connection waits for messages nobody will read.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            if replays is not None:
                with contextlib.suppress(Exception):
                    await replays.unsubscribe()

    async def _read_lag(self, subscription: JetStreamContext.PullSubscription) -> None:
        """How many events wait for this consumer, as JetStream counts them."""
        with contextlib.suppress(Exception):  # a metric never stops the consumer
            info = await subscription.consumer_info()
            LAG.labels(self.durable).set(info.num_pending or 0)

    async def _wanted(self, message: Msg) -> bool:
        """Whether the message is of a type in `only`; the others are acknowledged at once."""
        if event_type_of(message.subject, root=self.subject_root) in (self.only or ()):
            return True
        await message.ack()
        return False

    async def handle(self, message: Msg) -> None:
        """Parse, handle once and acknowledge one event. A handler's error leaves it to come
        back later, and parks it once the handler has raised on `max_deliver` deliveries; an
        outage only delays it. Cancelled (shutdown) mid-way, it is neither acknowledged nor
        parked: JetStream delivers it again after `ack_wait`."""
        with message_span(
            "process", message.subject, message.headers,
            **{"consumer.group.name": self.durable},
        ):  # fmt: skip
            await self._handle(message)

    async def _handle(self, message: Msg) -> None:
        try:
            envelope = parse(message.data)
        except (ValidationError, LookupError) as error:  # no delivery could ever handle it
            await self._park(message, Reason.POISON, dead_letters.describe(error))
            return
        try:
            handled = await self._handle_once(envelope)
        except PoisonEvent as error:  # the handler's word first, whatever the error's context
            await self._park(message, Reason.POISON, dead_letters.describe(error))
            return
        except Exception as error:
            if is_outage(error):
                await self._delay_for_outage(message, error)
            else:
                await self._failed(message, error)
            return
        self.outages.forget(message)
        self.handled += handled
        await message.ack()
        ACKED.labels(self.durable).inc()

    async def _failed(self, message: Msg, error: Exception) -> None:
        """The handler raised (not for an outage): park the event if that was its last try,
        else let it come back after the next delay."""
        failures = self.outages.failures(message)
        if failures >= self.redelivery.max_deliver:
            await self._park(message, Reason.FAILED, dead_letters.describe(error))
            return
        delay = self.redelivery.delay_after(failures)
        log.warning(
            "consumer %s will retry an event in %.1fs (failure %d of %d): %s",
            self.durable, delay, failures, self.redelivery.max_deliver,
            dead_letters.describe(error),
        )  # fmt: skip
        await message.nak(delay=delay)

    async def _delay_for_outage(self, message: Msg, error: Exception) -> None:
        """A dependency is away: the event comes back after a growing, capped delay, this
        delivery not counted against it; never parked for it."""
        delay = self.redelivery.outage_delay_s(self.outages.add(message))
        log.warning(
            "consumer %s: a dependency is away, the event comes back in %.1fs: %s",
            self.durable, delay, dead_letters.describe(error),
        )  # fmt: skip
        await message.nak(delay=delay)

    async def _park(self, message: Msg, reason: Reason, error: str) -> None:
        """Keep the event as a dead letter and stop its deliveries; if it cannot be kept (NATS
        away), it comes back later rather than being lost."""
        try:
            bus = await self.bus.get()
            await dead_letters.park(
                bus.js, stream=bus.stream, consumer=self.durable, message=message,
                reason=reason, error=error,
            )  # fmt: skip
        except Exception as failure:
            log.warning("consumer %s could not park a dead letter: %s", self.durable, failure)
            with contextlib.suppress(Exception):
                await message.nak(delay=self.redelivery.delay_after(len(self.redelivery.delays_s)))
            return
        self.outages.forget(message)
        await message.term()

    async def replay_dead_letter(self, seq: int) -> bool:
        """Handle one of this consumer's dead letters again (an operator fixed the cause) and
        remove it; False if it had been handled already. Raises as the handler does, and
        then the dead letter stays."""
        bus = await self.bus.get()
        parked = await dead_letters.dead_letter(bus.js, stream=bus.stream, seq=seq)
        if parked.consumer != self.durable:
            raise LookupError(f"dead letter {seq} belongs to consumer {parked.consumer!r}")
        handled = await self._handle_once(parse(parked.data))
        await dead_letters.discard(bus.js, stream=bus.stream, seq=seq)
        self.handled += handled
        return handled

    async def _handle_batch(self, messages: list[Msg]) -> list[Msg]:
        """Handle the batch's first deliveries in one transaction and acknowledge them; returns
        the messages left to handle one by one (redeliveries, or all of them if one failed)."""
        batch: list[tuple[Envelope, Msg]] = []
        alone: list[Msg] = []
        for message in messages:
            if message.metadata.num_delivered not in (None, 1):
                alone.append(message)  # failed before: it must not sink a batch again
                continue
            try:
                batch.append((parse(message.data), message))
            except (ValidationError, LookupError) as error:
                await self._park(message, Reason.POISON, dead_letters.describe(error))
        if len(batch) < 2:
            return alone + [message for _, message in batch]
        if (lock_order := self.lock_order) is not None:
            batch.sort(key=lambda item: lock_order(item[0]))
        try:
            handled = []
            async with self.sessions() as session, session.begin():
                for envelope, message in batch:
                    with message_span(
                        "process", message.subject, message.headers,
                        **{"consumer.group.name": self.durable},
                    ):  # fmt: skip
                        handled.append(await self._first_time(session, envelope))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info(
                "consumer %s: batch rolled back (%s), one by one now",
                self.durable, dead_letters.describe(error),
            )  # fmt: skip
            left = {id(message) for message in alone} | {id(message) for _, message in batch}
            return [message for message in messages if id(message) in left]
        self.handled += sum(handled)
        for _, message in batch:
            await message.ack()
        ACKED.labels(self.durable).inc(len(batch))
        return alone

    async def _handle_once(self, envelope: Envelope) -> bool:
        """Run the handler unless this event was handled before; both in one transaction."""
        async with self.sessions() as session, session.begin():
            return await self._first_time(session, envelope)

    async def _first_time(self, session: AsyncSession, envelope: Envelope) -> bool:
        """Record the event as handled and run the handler; False if it was handled before."""
        first_time = await session.execute(
            insert(self.processed)
            .values(consumer=self.durable, event_id=envelope.id)
            .on_conflict_do_nothing()
            .returning(self.processed.c.event_id)
        )
        if first_time.first() is None:
            return False
        await self.handler(session, envelope)
        return True
