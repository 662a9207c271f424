"""The webhooks dispatcher and the admin's changes on real PostgreSQL, where they meet: the claim
over a long queue, the order locks are taken in, a graceful stop with an answer on its way, and
the test event's own queue."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import create_engine, session_factory
from services.webhooks import dispatcher as dispatching
from services.webhooks.app import create_app, migrate
from services.webhooks.deliveries_log import NO_LIVE
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.outcomes import record_outcome
from services.webhooks.sender import Outcome
from services.webhooks.settings import WebhooksSettings
from tests.conftest import eventually
from tests.integration.webhooks_support import featured, publish, register, settings_for
from tests.support.services import schema_connection, serving
from tests.support.webhook_receiver import Receiver, running_receiver

SCHEMA_PREFIX = "whd_"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def settings(env: dict) -> WebhooksSettings:
    chosen = settings_for(env, db_schema_prefix=SCHEMA_PREFIX)
    await migrate(chosen)
    return chosen


@pytest.fixture
async def db(settings: WebhooksSettings) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the schema, emptied first (each test counts what is in it)."""
    async with schema_connection(settings, "webhooks") as conn:
        await conn.execute("DELETE FROM endpoints")
        yield conn


@pytest.fixture
async def sessions(settings: WebhooksSettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, schema=settings.schema_for("webhooks"))
    yield session_factory(engine)
    await engine.dispose()


async def an_endpoint(db: asyncpg.Connection, *, status: str = "enabled") -> UUID:
    endpoint = uuid4()
    await db.execute(
        "INSERT INTO endpoints (id, url, event_types, allow_personal_data, secret, status,"
        " created_at, updated_at) VALUES ($1, 'http://127.0.0.1:9/', '{*}', false, 'sealed',"
        " $2, now(), now())",
        endpoint, status,
    )  # fmt: skip
    return endpoint


async def queued(
    db: asyncpg.Connection, endpoint: UUID, live: UUID, *, due_in_s: float = 0,
    claimed: bool = False, event_type: str = "product.featured",
) -> int:  # fmt: skip
    return await db.fetchval(
        "INSERT INTO deliveries (endpoint_id, event_id, event_type, stream_id, body, status,"
        " next_attempt_at, claimed_until, created_at) VALUES ($1, $2, $3, $4, '{}', 'pending',"
        " now() + make_interval(secs => $5),"
        " CASE WHEN $6 THEN now() + interval '1 minute' END, now()) RETURNING id",
        endpoint, uuid4(), event_type, live, due_in_s, claimed,
    )  # fmt: skip


def a_dispatcher(sessions: async_sessionmaker[AsyncSession], settings: Any) -> Dispatcher:
    return Dispatcher(sessions=sessions, sender=None, box=None, alerts=None, settings=settings)  # type: ignore[arg-type]


async def test_a_claim_over_a_long_queue_is_quick_and_takes_each_lives_oldest_up_to_the_cap(
    db: asyncpg.Connection, sessions, settings: WebhooksSettings
):
    busy, other = await an_endpoint(db), await an_endpoint(db)
    lives = [uuid4() for _ in range(50)]
    await db.execute(
        "INSERT INTO deliveries (endpoint_id, event_id, event_type, stream_id, body, status,"
        " next_attempt_at, created_at) SELECT $1, gen_random_uuid(), 'product.featured',"
        " ($2::uuid[])[1 + g % 50], '{}', 'pending', now(), now()"
        " FROM generate_series(1, 10000) AS g",
        busy, lives,
    )  # fmt: skip
    # Two lives of `busy` have their oldest in flight: 3 of its 5 slots are left.
    await db.execute(
        "UPDATE deliveries SET claimed_until = now() + interval '1 minute' WHERE id IN"
        " (SELECT min(id) FROM deliveries WHERE endpoint_id = $1 GROUP BY stream_id LIMIT 2)",
        busy,
    )
    alone = await queued(db, other, uuid4())
    await db.execute("ANALYZE deliveries")  # as autovacuum would have by then
    heads = {  # the oldest of each live with nothing in flight
        row["id"]
        for row in await db.fetch(
            "SELECT min(id) AS id FROM deliveries WHERE endpoint_id = $1"
            " GROUP BY stream_id HAVING count(claimed_until) = 0",
            busy,
        )
    }
    assert settings.webhooks_concurrency_per_endpoint == 5

    started = time.perf_counter()
    claimed = await a_dispatcher(sessions, settings)._claim(20)
    took = time.perf_counter() - started

    assert took < 1.0, f"a claim over 10,000 pending deliveries took {took:.2f}s"
    mine = [row.id for row in claimed if row.endpoint_id == busy]
    assert len(mine) == 3 and set(mine) <= heads
    assert alone in {row.id for row in claimed}
    in_flight = await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE claimed_until > now() AND endpoint_id = $1", busy
    )
    assert in_flight == 5  # what the claim did not keep went back in the same transaction


async def test_recording_an_outcome_while_an_admin_enables_the_endpoint_does_not_deadlock(
    db: asyncpg.Connection, sessions, settings: WebhooksSettings
):
    endpoint = await an_endpoint(db, status="disabled")
    delivery = await queued(db, endpoint, uuid4(), claimed=True)
    lease = await db.fetchval("SELECT claimed_until FROM deliveries WHERE id = $1", delivery)
    async with schema_connection(settings, "webhooks") as admin:
        await admin.execute("SET deadlock_timeout = '10s'")  # the recording is the one to see it
        async with admin.transaction():
            # What enable_endpoint does: the endpoint locked, then its pending deliveries.
            await admin.execute("SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint)
            recording = asyncio.create_task(
                record_outcome(
                    sessions=sessions,
                    settings=settings,
                    delivery_id=delivery,
                    claimed_until=lease,
                    attempt=1,
                    outcome=Outcome(datetime.now(UTC), 200, None, 12),
                )
            )
            await asyncio.sleep(0.3)  # the recording waits on a lock by now
            await asyncio.wait_for(
                admin.execute(
                    "UPDATE deliveries SET next_attempt_at = now()"
                    " WHERE endpoint_id = $1 AND status = 'pending'",
                    endpoint,
                ),
                timeout=5,
            )
        assert await asyncio.wait_for(recording, timeout=5) is None
    assert await db.fetchval("SELECT status FROM deliveries WHERE id = $1", delivery) == "delivered"


@pytest.mark.parametrize("change", ["enable", "delete"])
async def test_an_admins_change_that_meets_a_deadlock_is_tried_again_not_answered_500(
    db: asyncpg.Connection, settings: WebhooksSettings, admin: dict, change: str
):
    endpoint = await an_endpoint(db, status="disabled")
    delivery = await queued(db, endpoint, uuid4(), due_in_s=3600)
    async with (
        serving(create_app(settings), "webhooks") as client,
        schema_connection(settings, "webhooks") as other,
    ):
        await other.execute("SET deadlock_timeout = '10s'")  # the route is the one to see it
        url = f"/api/webhooks/endpoints/{endpoint}"
        async with other.transaction():
            # The other order (the delivery, then its endpoint), so that PostgreSQL gives one up.
            await other.execute("SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE", delivery)
            answer = asyncio.create_task(
                client.post(f"{url}/enable", headers=admin)
                if change == "enable"
                else client.delete(url, headers=admin)
            )
            await asyncio.sleep(0.3)  # the route has the endpoint and waits for the delivery
            await asyncio.wait_for(
                other.execute("SELECT 1 FROM endpoints WHERE id = $1 FOR NO KEY UPDATE", endpoint),
                timeout=5,
            )
        answered = await asyncio.wait_for(answer, timeout=10)
    assert answered.status_code == (200 if change == "enable" else 204), answered.text
    state = await db.fetchval("SELECT status FROM endpoints WHERE id = $1", endpoint)
    assert state == ("enabled" if change == "enable" else None)


async def test_enabling_an_endpoint_that_is_not_disabled_is_a_409_and_changes_nothing(
    db: asyncpg.Connection, settings: WebhooksSettings, admin: dict
):
    endpoint = await an_endpoint(db)
    await db.execute(
        "UPDATE endpoints SET consecutive_failures = 2, failing_since = now() WHERE id = $1",
        endpoint,
    )
    delivery = await queued(db, endpoint, uuid4(), due_in_s=3600)  # backing off
    before = await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", endpoint)
    async with serving(create_app(settings), "webhooks") as client:
        answer = await client.post(f"/api/webhooks/endpoints/{endpoint}/enable", headers=admin)
    assert answer.status_code == 409, answer.text
    assert answer.json() == {"detail": "the endpoint is not disabled"}
    assert await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", endpoint) == before
    due_in = await db.fetchval(
        "SELECT next_attempt_at - now() FROM deliveries WHERE id = $1", delivery
    )
    assert due_in > timedelta(minutes=50)


async def test_a_test_event_does_not_wait_behind_an_earlier_one_still_retried(
    db: asyncpg.Connection, settings: WebhooksSettings, admin: dict, receiver: Receiver
):
    async with serving(create_app(settings), "webhooks") as client:
        endpoint = await register(client, admin, receiver, "tested", event_types=["stream.*"])
        # An earlier test event that failed: its next attempt in hours.
        await queued(
            db, UUID(endpoint["id"]), NO_LIVE, due_in_s=5 * 3600, event_type="webhook.test"
        )
        sent = await client.post(f"/api/webhooks/endpoints/{endpoint['id']}/test", headers=admin)
        assert sent.status_code == 202, sent.text
        await eventually(lambda: receiver.delivered("tested"), timeout=5)
        (got,) = receiver.delivered("tested")
        assert got.webhook_id == sent.json()["event_id"]
        assert got.event["stream_id"] == str(NO_LIVE)  # about no live, whatever its queue
        log = await client.get(
            f"/api/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin
        )
        assert {d["stream_id"] for d in log.json()["items"]} == {str(NO_LIVE)}


async def test_an_answer_on_its_way_when_the_service_stops_is_recorded_not_sent_again(
    settings: WebhooksSettings, receiver: Receiver, js: JetStreamContext, env: dict, admin: dict,
    db: asyncpg.Connection,
):  # fmt: skip
    receiver.slow_s = 0.6  # within the attempt timeout (1 s)
    async with serving(create_app(settings), "webhooks") as client:
        endpoint = await register(client, admin, receiver, "slow", event_types=["product.*"])
        receiver.modes["slow"] = "slow"  # 200, 0.6 s after the request came
        event = featured(uuid4(), 1)
        await publish(js, env, event)
        await eventually(lambda: receiver.of("slow"), timeout=10)
    # Stopped gracefully with the 2xx still on its way; started again.
    async with serving(create_app(settings), "webhooks") as client:
        await asyncio.sleep(1.5)  # for a copy that should not come
        log = await client.get(
            f"/api/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin
        )
    assert [r.webhook_id for r in receiver.of("slow")] == [str(event.id)]
    (delivery,) = log.json()["items"]
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1


async def test_an_outcome_is_recorded_through_a_database_outage_for_as_long_as_the_lease_lasts(
    db: asyncpg.Connection, settings: WebhooksSettings, receiver: Receiver, admin: dict,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    patient = settings.model_copy(update={"webhooks_lease_s": 20.0})
    refused_until = time.monotonic() + 9.0  # longer than the 7.5 s it used to try for

    async def flaky(**kwargs: Any) -> Any:
        if time.monotonic() < refused_until:
            raise ConnectionRefusedError("the database is away")
        return await record_outcome(**kwargs)

    monkeypatch.setattr(dispatching, "record_outcome", flaky)
    async with serving(create_app(patient), "webhooks") as client:
        endpoint = await register(client, admin, receiver, "outage", event_types=["stream.*"])
        await client.post(f"/api/webhooks/endpoints/{endpoint['id']}/test", headers=admin)
        await eventually(lambda: receiver.delivered("outage"), timeout=5)

        async def recorded() -> bool:
            status = await db.fetchval(
                "SELECT status FROM deliveries WHERE endpoint_id = $1", UUID(endpoint["id"])
            )
            return status == "delivered"

        await eventually(recorded, timeout=15)
    assert len(receiver.of("outage")) == 1
