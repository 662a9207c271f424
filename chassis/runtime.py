"""What every service's lifespan builds the same way: the database, the bus, the outbox relay,
background tasks and readiness checks. A service adds only what is its own."""

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Collection, Coroutine
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from chassis.auth import TokenVerifier
from chassis.bus import BusProvider
from chassis.consumer import EventConsumer, Handler, Redelivery
from chassis.db import create_engine, session_factory
from chassis.health import tolerated
from chassis.outbox import Outbox, OutboxRelay
from chassis.settings import ServiceSettings
from chassis.web import ReadinessCheck

log = logging.getLogger(__name__)

NATS_READY_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 3.0


class Runtime:
    """One service process's shared parts. `run` adds a background task stopped with the rest."""

    def __init__(self, settings: ServiceSettings, *, service: str, outbox: sa.Table) -> None:
        self.settings = settings
        self.service = service
        self.engine = create_engine(
            settings.database_url,
            schema=settings.schema_for(service),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout_s=settings.db_pool_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self.sessions = session_factory(self.engine)
        self.bus = BusProvider(
            settings.nats_url,
            name=service,
            stream=settings.jetstream_stream,
            subject_root=settings.subject_root,
            replicas=settings.jetstream_replicas,
            dead_letter_max_bytes=settings.dead_letter_max_bytes,
            options=settings.bus_options(),
        )
        # The producer names the NOTIFY channel the relay listens on: both are the service.
        self.outbox = Outbox(table=outbox, producer=service, subject_root=settings.subject_root)
        self.relay = OutboxRelay(
            engine=self.engine,
            table=outbox,
            bus=self.bus,
            service=service,
            scope=settings.schema_for(service),
        )
        self.tasks: list[asyncio.Task[Any]] = []

    def run(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        self.tasks.append(asyncio.create_task(work, name=f"{self.service}-{name}"))

    def consume(
        self,
        *,
        durable: str,
        events: str,
        handler: Handler,
        processed: sa.Table,
        only: Collection[str] | None = None,
        from_now: bool = False,
    ) -> EventConsumer:
        """Follow an event family with a durable consumer, for as long as the service runs
        (`only`: the types of the family it handles; the others are acknowledged untouched;
        `from_now`: a new durable starts with the events to come, not the stream's past)."""
        consumer = EventConsumer(
            bus=self.bus,
            sessions=self.sessions,
            processed=processed,
            durable=self.settings.durable_name(durable),
            events=events,
            handler=handler,
            subject_root=self.settings.subject_root,
            redelivery=Redelivery.of(self.settings),
            only=only,
            from_now=from_now,
        )
        self.run(consumer.run(), durable)
        return consumer

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            _, stuck = await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.warning("%s did not stop in %.0fs", task.get_name(), STOP_TIMEOUT_S)
        await self.bus.close()
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def service_runtime(
    app: FastAPI, settings: ServiceSettings, *, service: str, outbox: sa.Table
) -> AsyncIterator[Runtime]:
    """Build the shared parts into `app.state` (where chassis.auth and the readiness checks
    look), start the outbox relay, and stop everything on the way out."""
    runtime = Runtime(settings, service=service, outbox=outbox)
    app.state.runtime = runtime
    app.state.engine, app.state.sessions, app.state.bus = (
        runtime.engine,
        runtime.sessions,
        runtime.bus,
    )
    app.state.relay = runtime.relay
    app.state.token_verifier = TokenVerifier(settings)
    runtime.run(runtime.relay.run(), "outbox-relay")
    try:
        yield runtime
    finally:
        await runtime.stop()


def readiness(
    app: FastAPI, settings: ServiceSettings | None = None, *, redis: ReadinessCheck | None = None
) -> dict[str, ReadinessCheck]:
    """Ready means the service reaches its database. NATS (and Redis, if the service uses it)
    is reported but tolerated for `settings.readiness_nats_outage_bound_s` (and
    `readiness_redis_outage_bound_s`), by default for ever: while NATS is away writes go on
    into the outbox, while Redis is the limits fail open."""
    nats_bound_s = settings.readiness_nats_outage_bound_s if settings is not None else math.inf
    redis_bound_s = settings.readiness_redis_outage_bound_s if settings is not None else math.inf

    async def database() -> bool:
        async with app.state.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True

    async def nats() -> bool:
        bus = await asyncio.wait_for(app.state.bus.get(), NATS_READY_TIMEOUT_S)
        return bool(bus.nc.is_connected)

    checks: dict[str, ReadinessCheck] = {
        "database": database,
        "nats": tolerated(nats, bound_s=nats_bound_s),
    }
    if redis is not None:
        checks["redis"] = tolerated(redis, bound_s=redis_bound_s)
    return checks
