"""`make bench` (analytics): events per second the analytics consumers sustain, and duplicates.

In a run of its own (`bench.isolation`: own database, stream, subject root), N events for a few
lives — a realistic mix of viewer.joined/left, product.clicked, cart.added and chat.posted, valid
payloads, unique ids — are first published straight into the run's JetStream stream (with their
ids as `Nats-Msg-Id`, as the outbox relay does). Then the analytics consumers start in this
process, as the service builds them (`services.analytics.app.consumers`, one durable per family,
each event's processed-id insert in the transaction of its effects), and the clock runs until the
`processed_events` rows number N. Per family: its events over the time its last one was handled.
Two runs side by side: the baseline commits each event on its own, the service commits each
fetched batch at once (falling back to one by one when an event of it fails).

Second pass, redeliveries: the consumers stop, the same envelopes are published again (without
`Nats-Msg-Id`, as after the duplicate window or a lost ack, so JetStream stores them again), the
consumers restart and the clock runs until every durable has acknowledged everything. The facts
(views, clicks, cart additions, chat messages) must not change.

    uv run python -m bench.analytics --events 20000 --lives 5
"""

import argparse
import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from pydantic import BaseModel

from bench.cases import add_name_argument, run_case
from bench.isolation import isolated_env
from bench.report import cpu_seconds, pids_named, render
from chassis.bus import BusProvider
from chassis.db import create_engine, session_factory
from contracts import Envelope, new_envelope, subject_for
from contracts.chat import ChatMessage, ChatPosted
from contracts.products import CartAdded, ProductClicked
from contracts.viewers import ViewerJoined, ViewerLeft
from services.analytics.app import SERVICE, consumers
from services.analytics.handlers import durable_of
from services.analytics.settings import AnalyticsSettings

# Shares of the mix (viewer.left closes an earlier view of the same live).
MIX = {"viewer.joined": 0.35, "viewer.left": 0.25, "product.clicked": 0.2, "cart.added": 0.05}
# What the facts count; the second pass must leave every figure as it was.
FACTS = {
    "views": "SELECT count(*) FROM live_stream_viewers",
    "closed_views": "SELECT count(*) FROM live_stream_viewers WHERE left_at IS NOT NULL",
    "watched_ms": "SELECT coalesce(sum(watched_ms), 0) FROM live_stream_viewers",
    "clicks": "SELECT count(*) FROM product_clicks",
    "cart_additions": "SELECT count(*) FROM cart_additions",
    "chat_messages": "SELECT count(*) FROM chat_messages",
}


def make_events(count: int, lives: int, seed: int) -> list[Envelope]:
    """`count` envelopes spread over `lives` lives, in the order producers would emit them."""
    rng = random.Random(seed)
    streams = [uuid4() for _ in range(lives)]
    products = {stream: [uuid4() for _ in range(5)] for stream in streams}
    open_views: dict[UUID, list[tuple[str, str | None, datetime]]] = {s: [] for s in streams}
    at = datetime.now(UTC) - timedelta(hours=1)
    kinds, weights = list(MIX), list(MIX.values())
    kinds.append("chat.posted")
    weights.append(1 - sum(weights))
    events: list[Envelope] = []
    while len(events) < count:
        at += timedelta(milliseconds=rng.randint(1, 200))
        stream = rng.choice(streams)
        kind = rng.choices(kinds, weights)[0]
        if kind == "viewer.left" and not open_views[stream]:
            kind = "viewer.joined"
        user = f"user-{rng.randint(1, 5000)}" if rng.random() < 0.4 else None
        payload: BaseModel
        if kind == "viewer.joined":
            session = f"s-{uuid4().hex[:12]}"
            open_views[stream].append((session, user, at))
            payload = ViewerJoined(session_id=session, user_id=user, gateway_id="gw-bench")
        elif kind == "viewer.left":
            views = open_views[stream]
            session, user, joined = views.pop(rng.randrange(len(views)))
            payload = ViewerLeft(
                session_id=session,
                user_id=user,
                gateway_id="gw-bench",
                watched_seconds=(at - joined).total_seconds(),
            )
        elif kind == "product.clicked":
            payload = ProductClicked(
                product_id=rng.choice(products[stream]),
                session_id=f"s-{rng.randint(1, 5000)}",
                user_id=user,
            )
        elif kind == "cart.added":
            payload = CartAdded(
                product_id=rng.choice(products[stream]),
                quantity=rng.randint(1, 3),
                cart_id=uuid4(),
                session_id=f"s-{rng.randint(1, 5000)}",
                user_id=user,
                unit_price=Decimal("19.90"),
                currency="EUR",
            )
        else:
            message = ChatMessage(
                id=uuid4(),
                user_id=user or f"user-{rng.randint(1, 5000)}",
                display_name="Bench viewer",
                message="Is it available in blue?",
                created_at=at,
            )
            payload = ChatPosted(message=message)
        events.append(new_envelope(payload, stream_id=stream, producer="bench", occurred_at=at))
    return events


async def publish(
    bus: BusProvider, events: list[Envelope], *, root: str, msg_id: bool, batch: int
) -> float:
    """Publish every envelope (`batch` concurrent publishes at a time); returns the seconds."""
    connected = await bus.get()
    bodies = [
        (subject_for(e.stream_id, e.type, root=root), e.model_dump_json().encode(), str(e.id))
        for e in events
    ]
    started = time.perf_counter()
    for first in range(0, len(bodies), batch):
        await asyncio.gather(
            *(
                connected.js.publish(
                    subject,
                    body,
                    stream=connected.stream,
                    headers={"Nats-Msg-Id": event_id} if msg_id else None,
                )
                for subject, body, event_id in bodies[first : first + batch]
            )
        )
    return time.perf_counter() - started


async def pending(bus: BusProvider, durables: list[str]) -> int:
    """Events not yet acknowledged by the durables (still to deliver, or delivered, unacked)."""
    connected = await bus.get()
    total = 0
    for durable in durables:
        info = await connected.js.consumer_info(connected.stream, durable)
        total += (info.num_pending or 0) + (info.num_ack_pending or 0)
    return total


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The baseline (one transaction per event) and the service's way (one per fetched batch),
    side by side, each in a run of its own."""
    baseline = await run_mode(args, batched=False)
    batched = await run_mode(args, batched=True)
    return {
        **batched,
        "results": baseline["results"] + batched["results"],
        "per_family": baseline["per_family"] + batched["per_family"],
    }


async def run_mode(args: argparse.Namespace, *, batched: bool) -> dict[str, Any]:
    mode = "a batch per transaction" if batched else "an event per transaction"
    async with isolated_env() as env:
        settings = AnalyticsSettings(**env)  # type: ignore[arg-type]
        root = settings.subject_root
        engine = create_engine(settings.database_url, schema=settings.schema_for(SERVICE))
        sessions = session_factory(engine)
        bus = BusProvider(
            settings.nats_url,
            name="bench-analytics",
            stream=settings.jetstream_stream,
            subject_root=root,
        )
        events = make_events(args.events, args.lives, args.seed)
        families = Counter(durable_of(e.type) for e in events)
        durables = sorted(d for d in families if d is not None)

        async def scalar(sql: str) -> Any:
            async with engine.connect() as connection:
                return (await connection.execute(sa.text(sql))).scalar()

        async def facts() -> dict[str, int]:
            return {name: int(await scalar(sql)) for name, sql in FACTS.items()}

        async def consume(done: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
            """Start the consumers, wait until `done()`; CPU of this process and of PostgreSQL."""
            db_before = {pid: cpu_seconds(pid) for pid in pids_named("postgres")}
            own_before = time.process_time()
            started_wall, started = time.time(), time.perf_counter()
            followers = consumers(bus=bus, sessions=sessions, subject_root=root, batched=batched)
            tasks = [asyncio.create_task(c.run()) for c in followers]
            try:
                while not await done():
                    if time.perf_counter() - started > args.timeout:
                        raise TimeoutError(f"not done after {args.timeout}s")
                    await asyncio.sleep(0.05)
                seconds = time.perf_counter() - started
                own = time.process_time() - own_before
                # Backends opened meanwhile (the consumers' pool) count from zero.
                db = sum(cpu_seconds(p) - db_before.get(p, 0.0) for p in pids_named("postgres"))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return {
                "seconds": seconds,
                "started_at": started_wall,
                "consumer_cpu_pct": 100 * own / seconds,
                "db_cpu_pct": 100 * db / seconds,
            }

        try:
            print(f"publishing {len(events):,} events over {args.lives} lives", flush=True)
            published_s = await publish(bus, events, root=root, msg_id=True, batch=args.batch)

            async def handled() -> bool:
                return int(await scalar("SELECT count(*) FROM processed_events")) >= len(events)

            first = await consume(handled)
            per_family = []
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT consumer, count(*), extract(epoch FROM max(processed_at))"
                        " FROM processed_events GROUP BY consumer ORDER BY consumer"
                    )
                )
                for consumer, count, last in rows:
                    took = float(last) - first["started_at"]
                    per_family.append(
                        {
                            "mode": mode,
                            "family": consumer,
                            "events": count,
                            "seconds": took,
                            "rate": count / took,
                        }
                    )
            after_first = await facts()

            print(f"publishing the same {len(events):,} envelopes again", flush=True)
            republished_s = await publish(bus, events, root=root, msg_id=False, batch=args.batch)

            async def acknowledged() -> bool:
                return await pending(bus, durables) == 0

            second = await consume(acknowledged)
            after_second = await facts()
            processed = int(await scalar("SELECT count(*) FROM processed_events"))
        finally:
            logging.getLogger("chassis.bus").setLevel(logging.ERROR)  # its drain is no news
            await bus.close()
            await engine.dispose()
    if after_second != after_first or processed != len(events):
        raise AssertionError(f"duplicates counted: {after_first} → {after_second}, {processed}")
    return {
        "mix": dict(Counter(e.type for e in events)),
        "publish": {"seconds": published_s, "rate": len(events) / published_s},
        "republish": {"seconds": republished_s, "rate": len(events) / republished_s},
        "results": [
            {"mode": mode, "pass": "first delivery", "events": len(events), **first},
            {"mode": mode, "pass": "duplicates", "events": len(events), **second},
        ],
        "per_family": per_family,
        "facts": after_second,
    }


COLUMNS = (
    ("transactions", "{mode}"),
    ("pass", "{pass}"),
    ("events", "{events:,}"),
    ("seconds", "{seconds:.2f}"),
    ("events/s", "{rate:,.0f}"),
    ("consumer CPU", "{consumer_cpu_pct:.0f}%"),
    ("postgres CPU", "{db_cpu_pct:.0f}%"),
)
FAMILY_COLUMNS = (
    ("transactions", "{mode}"),
    ("durable", "{family}"),
    ("events", "{events:,}"),
    ("seconds", "{seconds:.2f}"),
    ("events/s", "{rate:,.0f}"),
)


def table(document: dict[str, Any]) -> str:
    rows = [{**row, "rate": row["events"] / row["seconds"]} for row in document["results"]]
    return (
        "analytics consumers (in one process, a durable per family): events published first,"
        " then consumed until all are handled\n"
        + render(rows, COLUMNS)
        + "\n\nper family (first delivery, side by side)\n"
        + render(document["per_family"], FAMILY_COLUMNS)
        + f"\n\nfacts unchanged by the duplicates: {document['facts']}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events to publish")
    parser.add_argument("--lives", type=int, default=5, help="lives the events are about")
    parser.add_argument("--batch", type=int, default=500, help="concurrent publishes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pass at most")
    add_name_argument(parser, name="analytics")
    return parser.parse_args(argv)


def main() -> None:
    run_case(run, parse_args(), table)


if __name__ == "__main__":
    main()
