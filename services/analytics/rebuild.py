"""Rebuild every figure from the events JetStream retains, into a fresh schema.

`python -m services.analytics.rebuild analytics_rebuilt` replays the `LIVE` stream from its first
event through the same handlers as the live consumers, copies what did not come from the bus (the
shops' orders and refunds, the webhook deliveries seen, the players' sessions) and credits every
order again. Point a deployment at the new schema (or compare it with the old one) once it is done.
"""

import asyncio
import logging
import secrets
import sys

import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert

from chassis.bus import BusProvider
from chassis.db import create_engine, session_factory
from chassis.migrations import upgrade
from contracts import Envelope
from services.analytics import orders
from services.analytics.app import MIGRATIONS, SERVICE
from services.analytics.handlers import durable_of, on_event
from services.analytics.models import DERIVED, OUTSIDE, processed_events
from services.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)
BATCH = 500


def _quoted(schema: str) -> str:
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"not a schema name: {schema!r}")
    return f'"{schema}"'


async def rebuild(settings: AnalyticsSettings, *, schema: str, source: str | None = None) -> int:
    """Replay every retained event into `schema` (emptied first); returns how many were applied.
    Orders, refunds and player sessions are copied from `source` (default: the service's
    schema)."""
    source = source or settings.schema_for(SERVICE)
    if schema == source:
        raise ValueError("rebuild into a new schema, not the one being served")
    await upgrade(migrations_dir=MIGRATIONS, database_url=settings.database_url, schema=schema)
    engine = create_engine(settings.database_url, schema=schema)
    sessions = session_factory(engine)
    bus = BusProvider(
        settings.nats_url,
        name=f"{SERVICE}-rebuild",
        stream=settings.jetstream_stream,
        subject_root=settings.subject_root,
        options=settings.bus_options(),
    )
    try:
        async with engine.begin() as conn:
            for table in (*DERIVED, *OUTSIDE):
                await conn.execute(sa.delete(table))
            for table in OUTSIDE:
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                copy = (
                    f"INSERT INTO {table.name} ({columns}) "  # noqa: S608
                    f"SELECT {columns} FROM {_quoted(source)}.{table.name}"
                )
                await conn.execute(sa.text(copy))
        applied = await _replay(bus, sessions, settings)
        async with sessions() as session, session.begin():
            await orders.reattribute_all(session)
        return applied
    finally:
        await bus.close()
        await engine.dispose()


async def _replay(bus: BusProvider, sessions: object, settings: AnalyticsSettings) -> int:
    connection = await bus.get()
    last = (await connection.js.stream_info(bus.stream)).state.last_seq
    if not last:
        return 0
    name = f"{SERVICE}-rebuild-{secrets.token_hex(4)}"
    subscription = await connection.js.pull_subscribe(
        f"{settings.subject_root}.>",
        durable=name,
        stream=bus.stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60
        ),
    )
    applied, seen = 0, 0
    try:
        while seen < last:
            try:
                messages = await subscription.fetch(BATCH, timeout=2)
            except (TimeoutError, FetchTimeoutError):
                break  # nothing more within reach: the newest events may have aged out
            async with sessions() as session, session.begin():  # type: ignore[operator]
                for message in messages:
                    seen = message.metadata.sequence.stream
                    try:
                        envelope = Envelope.model_validate_json(message.data)
                        durable = durable_of(envelope.type)
                        if durable is None:
                            continue
                        first = await session.execute(
                            insert(processed_events)
                            .values(consumer=durable, event_id=envelope.id)
                            .on_conflict_do_nothing()
                            .returning(processed_events.c.event_id)
                        )
                        if first.first() is None:
                            continue
                        async with session.begin_nested():
                            await on_event(session, envelope)
                        applied += 1
                    except (ValidationError, LookupError) as error:
                        log.error("rebuild skips a poison event: %s", error)
    finally:
        await subscription.unsubscribe()
        await connection.js.delete_consumer(bus.stream, name)
    return applied


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    schema = sys.argv[1] if len(sys.argv) > 1 else "analytics_rebuilt"
    applied = asyncio.run(rebuild(AnalyticsSettings(), schema=schema))
    print(f"rebuilt {schema} from {applied} events")


if __name__ == "__main__":
    main()
