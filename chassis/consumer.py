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
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.bus import BusProvider
from contracts import Envelope, event_type_of

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
LockOrder = Callable[[Envelope], tuple[str, ...]]


class PoisonEvent(Exception):
    """An event that can never be handled (malformed, unknown version): it is not retried."""


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
        retry_delay_s: float = 1.0,
        batched: bool = False,
        lock_order: LockOrder | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        """`events` filters event types, e.g. `stream.>` or `product.featured`; `only`, when a
        consumer needs a few types of a family, lets the others through with a mere ack."""
        self.bus = bus
        self.sessions = sessions
        self.processed = processed
        self.durable = durable
        self.subject = f"{subject_root}.*.{events}"
        self.handler = handler
        self.batch = batch
        self.ack_wait_s = ack_wait_s
        self.retry_delay_s = retry_delay_s
        self.batched = batched
        self.lock_order = lock_order
        self.only = frozenset(only) if only is not None else None
        self.subject_root = subject_root
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
                log.warning("consumer %s: %s; retrying in %.1fs", self.durable, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _consume(self) -> None:
        bus = await self.bus.get()
        subscription = await bus.js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=bus.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait_s,
                max_ack_pending=10 * self.batch,
            ),
        )
        try:
            while True:
                try:
                    messages = await subscription.fetch(self.batch, timeout=1)
                except (TimeoutError, FetchTimeoutError):
                    continue
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

    async def _wanted(self, message: Msg) -> bool:
        """Whether the message is of a type in `only`; the others are acknowledged at once."""
        if event_type_of(message.subject, root=self.subject_root) in (self.only or ()):
            return True
        await message.ack()
        return False

    async def handle(self, message: Msg) -> None:
        try:
            envelope = Envelope.model_validate_json(message.data)
            if await self._handle_once(envelope):
                self.handled += 1
        except (ValidationError, LookupError, PoisonEvent) as error:
            log.error("consumer %s drops a poison event: %s", self.durable, error)
            await message.term()
            return
        except Exception as error:
            log.warning("consumer %s will retry an event: %s", self.durable, error)
            await message.nak(delay=self.retry_delay_s)
            return
        await message.ack()

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
                batch.append((Envelope.model_validate_json(message.data), message))
            except ValidationError as error:
                log.error("consumer %s drops a poison event: %s", self.durable, error)
                await message.term()
        if len(batch) < 2:
            return alone + [message for _, message in batch]
        if (lock_order := self.lock_order) is not None:
            batch.sort(key=lambda item: lock_order(item[0]))
        try:
            async with self.sessions() as session, session.begin():
                handled = [await self._first_time(session, envelope) for envelope, _ in batch]
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("consumer %s: batch rolled back (%s), one by one now", self.durable, error)
            left = {id(message) for message in alone} | {id(message) for _, message in batch}
            return [message for message in messages if id(message) in left]
        self.handled += sum(handled)
        for _, message in batch:
            await message.ack()
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
