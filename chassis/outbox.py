"""Transactional outbox: events are written with the rows they describe, then relayed to JetStream.

A service calls `Outbox.record` inside the transaction that changes its data, so an event exists
if and only if the change was committed. `OutboxRelay` publishes pending rows in order with the
event id as `Nats-Msg-Id` (JetStream drops a re-publish inside its duplicate window), then marks
them sent. While NATS is away, writes go on and the rows wait.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import StatusCode
from prometheus_client import Counter, Gauge
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from chassis.bus import Bus, BusProvider, publish_event
from chassis.cancellation import raise_if_cancelled
from chassis.telemetry import publishing, trace_headers
from contracts import Envelope, new_envelope, subject_for

log = logging.getLogger(__name__)

# The relay's backlog, what an operator pages on: events written and not yet on the bus.
OUTBOX_UNSENT = Gauge("vitrine_outbox_unsent", "Events written, not yet published", ["service"])
OUTBOX_OLDEST = Gauge(
    "vitrine_outbox_oldest_unsent_seconds", "Age of the oldest event not yet published", ["service"]
)
OUTBOX_PUBLISHED = Counter("vitrine_outbox_published_total", "Events published", ["service"])
COUNT_EVERY_S = 15.0
OUTBOX_FAILURES = Counter(
    "vitrine_outbox_publish_failures_total", "Batches the bus refused or lost", ["service"]
)

CLEANUP_INTERVAL_S = 300.0
# Rows pending this close to the duplicate window are looked for in the stream before publishing
# (clocks of PostgreSQL and NATS may differ a little).
IN_DOUBT_MARGIN_S = 15.0


async def stored_ids(bus: Bus, rows: list[sa.Row]) -> set[uuid.UUID]:
    """Which of these outbox rows' events the stream already holds (by `Nats-Msg-Id`), read from
    each subject since the earliest of its rows was written."""
    found: set[uuid.UUID] = set()
    by_subject: dict[str, list[sa.Row]] = defaultdict(list)
    for row in rows:
        by_subject[row.subject].append(row)
    for subject, group in by_subject.items():
        wanted = {str(row.id): row.id for row in group}
        since = min(row.created_at for row in group) - timedelta(seconds=IN_DOUBT_MARGIN_S)
        sub = await bus.js.pull_subscribe(
            subject,
            stream=bus.stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=since.astimezone(UTC).isoformat(),
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
            ),
        )
        try:
            pending = (await sub.consumer_info()).num_pending or 0
            while pending > 0:
                batch = await sub.fetch(min(pending, 500), timeout=5)
                pending -= len(batch)
                for msg in batch:
                    if event_id := wanted.get((msg.headers or {}).get("Nats-Msg-Id", "")):
                        found.add(event_id)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    return found


def notify_channel(service: str) -> str:
    """The NOTIFY channel that wakes one service's relay (not every service's)."""
    return f"vitrine_outbox_{service}"


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The outbox table, declared in a service's own metadata (and so its own schema)."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("outbox_pending", "seq", postgresql_where=sa.text("published_at IS NULL")),
    )


class Outbox:
    """Writes events of one producer into its service's outbox table."""

    def __init__(self, *, table: sa.Table, producer: str, subject_root: str) -> None:
        self.table = table
        self.producer = producer
        self.subject_root = subject_root

    async def record(
        self,
        session: AsyncSession,
        payload: BaseModel,
        *,
        stream_id: object,
        headers: dict | None = None,
    ) -> Envelope:
        """Add an event to the session's transaction; it is published once that commits."""
        envelope = new_envelope(payload, stream_id=stream_id, producer=self.producer)  # type: ignore[arg-type]
        await session.execute(
            sa.insert(self.table).values(
                id=envelope.id,
                subject=subject_for(envelope.stream_id, envelope.type, root=self.subject_root),
                envelope=envelope.model_dump(mode="json"),
                headers={**trace_headers(), **(headers or {})},
            )
        )
        await session.execute(sa.select(sa.func.pg_notify(notify_channel(self.producer), "")))
        return envelope


class OutboxRelay:
    """Publishes pending outbox rows to JetStream; one active relay per service (advisory lock)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: sa.Table,
        bus: "BusProvider",
        service: str,
        scope: str | None = None,
        batch_size: int = 200,
        idle_poll_s: float = 1.0,
        keep_sent: timedelta = timedelta(days=1),
    ) -> None:
        self.engine = engine
        self.table = table
        self.bus = bus
        self.service = service
        # One leader per outbox table: relays of other schemas in the database are not rivals.
        self.scope = scope or service
        self.batch_size = batch_size
        self.idle_poll_s = idle_poll_s
        self.keep_sent = keep_sent
        self._wakeup = asyncio.Event()
        self.published = 0
        self._window_s: float | None = None  # the stream's duplicate window, read once
        self._counted_at = 0.0  # when the backlog was last counted

    async def run(self) -> None:
        """Relay for ever: wait for leadership, then publish as rows arrive."""
        backoff = 0.2
        while True:
            try:
                async with self.engine.connect() as leader:
                    try:
                        await self._become_leader(leader)
                        await self._listen(leader)
                        backoff = 0.2
                        await self._relay_loop(leader)
                    except BaseException:
                        # The lock and the listener live on this connection: never pool it again.
                        await leader.invalidate()
                        raise
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the relay must outlive any outage
                raise_if_cancelled(error)
                log.warning("outbox relay: %s; retrying in %.1fs", error, backoff)
                raise_if_cancelled()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _become_leader(self, leader: AsyncConnection) -> None:
        key = f"outbox:{self.scope}"
        while not (
            await leader.execute(sa.select(sa.func.pg_try_advisory_lock(sa.func.hashtext(key))))
        ).scalar():
            await leader.rollback()
            await asyncio.sleep(self.idle_poll_s)
        await leader.commit()

    async def _listen(self, leader: AsyncConnection) -> None:
        listener = (await leader.get_raw_connection()).driver_connection
        assert listener is not None
        await listener.add_listener(notify_channel(self.service), lambda *_: self._wakeup.set())

    async def _relay_loop(self, leader: AsyncConnection) -> None:
        last_cleanup = last_check = time.monotonic()
        while True:
            raise_if_cancelled()
            if time.monotonic() - last_check >= self.idle_poll_s:
                # The connection holding leadership (and LISTEN) must still be there, or
                # another relay may lead now. (Committed at once: notifications wait while a
                # transaction is open.)
                await leader.execute(sa.text("SELECT 1"))
                await leader.commit()
                last_check = time.monotonic()
            self._wakeup.clear()
            sent = await self.publish_pending()
            if sent == self.batch_size:
                continue
            if time.monotonic() - last_cleanup > CLEANUP_INTERVAL_S:
                await self._delete_old_rows()
                last_cleanup = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.idle_poll_s)

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows in order; returns how many were sent."""
        t = self.table
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        t.c.seq,
                        t.c.id,
                        t.c.subject,
                        t.c.envelope,
                        t.c.headers,
                        t.c.created_at,
                        sa.func.extract("epoch", sa.func.now() - t.c.created_at).label("age_s"),
                    )
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            OUTBOX_OLDEST.labels(self.service).set(float(rows[0].age_s) if rows else 0.0)
            if len(rows) < self.batch_size:
                OUTBOX_UNSENT.labels(self.service).set(len(rows))
            elif time.monotonic() - self._counted_at > COUNT_EVERY_S:  # a backlog: now and then
                self._counted_at = time.monotonic()
                OUTBOX_UNSENT.labels(self.service).set(await self._unsent(conn))
            if not rows:
                return 0
            bus = await self.bus.get()
            # Pending longer than JetStream remembers ids: an earlier attempt (a relay that died
            # between its publish and marking the row) may be stored, and a re-publish would not
            # be dropped. Those are looked for in the stream first.
            doubt_after_s = await self._duplicate_window_s(bus) - IN_DOUBT_MARGIN_S
            stored = await stored_ids(bus, [row for row in rows if row.age_s > doubt_after_s])
            if stored:
                log.info(
                    "outbox relay: %d events found already stored, not sent again", len(stored)
                )
                await conn.execute(
                    sa.update(t).where(t.c.id.in_(stored)).values(published_at=sa.func.now())
                )
                rows = [row for row in rows if row.id not in stored]
            # One connection keeps order; acks are awaited together for throughput.
            spans = [publishing(row.subject, row.headers) for row in rows]
            try:
                outcomes = await asyncio.gather(
                    *(
                        publish_event(
                            bus,
                            subject=row.subject,
                            body=orjson.dumps(row.envelope),
                            event_id=row.id,
                            headers=headers,
                        )
                        for row, (_, headers) in zip(rows, spans, strict=True)
                    ),
                    return_exceptions=True,
                )
                for (span, _), outcome in zip(spans, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        span.record_exception(outcome)
                        span.set_status(StatusCode.ERROR)
            finally:
                for span, _ in spans:
                    span.end()
            # Only the rows before the first failure count as sent; the rest go again, in order.
            failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
            sent = outcomes.index(failure) if failure is not None else len(rows)
            if sent:
                await conn.execute(
                    sa.update(t)
                    .where(t.c.seq.in_([r.seq for r in rows[:sent]]))
                    .values(published_at=sa.func.now())
                )
        self.published += sent
        OUTBOX_PUBLISHED.labels(self.service).inc(sent)
        if failure is not None:
            OUTBOX_FAILURES.labels(self.service).inc()
            raise failure
        return sent

    async def _unsent(self, conn: AsyncConnection) -> int:
        t = self.table
        query = sa.select(sa.func.count()).select_from(t).where(t.c.published_at.is_(None))
        return int((await conn.execute(query)).scalar_one())

    async def _duplicate_window_s(self, bus: Bus) -> float:
        if self._window_s is None:
            info = await bus.js.stream_info(bus.stream)
            self._window_s = float(info.config.duplicate_window or 0)
        return self._window_s

    async def _delete_old_rows(self) -> None:
        t = self.table
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(t).where(t.c.published_at < datetime.now(UTC) - self.keep_sent)
            )
