"""The webhooks service on real PostgreSQL and NATS JetStream, delivering to a real HTTP receiver
that checks every signature with the `standardwebhooks` library: once per endpoint, in order per
live, retried, disabled when it keeps failing, personal data only where allowed."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from nats.js import JetStreamContext
from standardwebhooks import Webhook

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from services.webhooks.app import create_app, migrate
from services.webhooks.settings import WebhooksSettings
from tests.conftest import auth, eventually
from tests.integration.webhooks_support import (
    cart_added,
    chat_posted,
    featured,
    publish,
    register,
    settings_for,
)
from tests.support.services import schema_connection, serving
from tests.support.webhook_receiver import Received, Receiver, running_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def about(receiver: Receiver, name: str, *lives, delivered: bool = False) -> list[Received]:
    """What `name` got about these lives (the run's stream holds other tests' events too)."""
    got = receiver.delivered(name) if delivered else receiver.of(name)
    return [r for r in got if r.event["stream_id"] in {str(live) for live in lives}]


async def handled(settings: WebhooksSettings, event_id) -> bool:
    """Whether the service's consumer has taken the event from the bus."""
    async with schema_connection(settings, "webhooks") as db:
        return bool(
            await db.fetchval("SELECT 1 FROM processed_events WHERE event_id = $1", event_id)
        )


@pytest.fixture(scope="module")
async def settings(env: dict) -> WebhooksSettings:
    chosen = settings_for(env, db_schema_prefix="whs_", webhooks_disable_after_failures=2)
    await migrate(chosen)
    return chosen


@pytest.fixture
async def client(settings: WebhooksSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "webhooks") as running:
        yield running


async def test_each_event_reaches_each_endpoint_once_signed_personal_data_only_where_allowed(
    client, receiver: Receiver, js: JetStreamContext, env: dict, admin: dict
):
    await register(client, admin, receiver, "crm", allow_personal_data=True)
    await register(client, admin, receiver, "zapier", event_types=["cart.*", "chat.posted"])
    live = uuid4()
    cart, chat = cart_added(live), chat_posted(live)
    await publish(js, env, cart)
    await publish(js, env, chat)
    # The same events again: JetStream drops the first (same Nats-Msg-Id); the second, under
    # another id, reaches the consumer, which has handled it already.
    await publish(js, env, cart)
    await publish(js, env, chat, msg_id=str(uuid4()))

    for name in ("crm", "zapier"):
        await eventually(lambda name=name: len(about(receiver, name, live)) >= 2)
    await asyncio.sleep(1.0)  # for a copy that should not come
    for name in ("crm", "zapier"):
        got = about(receiver, name, live)
        assert [r.webhook_id for r in got] == [str(cart.id), str(chat.id)], name
        assert all(r.verified for r in got)
        assert all(r.headers["content-type"] == "application/json" for r in got)
    crm, zapier = (about(receiver, name, live, delivered=True) for name in ("crm", "zapier"))
    assert crm[0].event == cart.model_dump(mode="json")
    assert crm[1].event["data"]["message"]["display_name"] == "Zoé Martin"
    # Without allow_personal_data: the same envelope, the person's fields taken out.
    cart_data = zapier[0].event["data"]
    assert {"session_id", "user_id", "cart_id"}.isdisjoint(cart_data)
    assert cart_data["quantity"] == 2 and cart_data["unit_price"] == "19.90"
    message = zapier[1].event["data"]["message"]
    assert "user_id" not in message and "display_name" not in message
    assert message["message"] == "hello"
    assert b"session-secret-1" not in zapier[0].body and b"user-42" not in zapier[1].body


async def test_a_failing_endpoint_gets_its_events_in_order_once_it_recovers(
    client, receiver: Receiver, js: JetStreamContext, env: dict, admin: dict
):
    endpoint = await register(client, admin, receiver, "flaky", event_types=["product.*"])
    receiver.modes["flaky"] = "fail"
    live, other_live = uuid4(), uuid4()
    events = [featured(live, n) for n in range(3)]
    for event in events:
        await publish(js, env, event)
    await publish(js, env, featured(other_live, 9))
    # The first event of the live is retried; the live's next ones wait behind it, while
    # the other live's event is not held up by this one's.
    await eventually(lambda: len(about(receiver, "flaky", live)) >= 3)
    assert {r.webhook_id for r in about(receiver, "flaky", live)} == {str(events[0].id)}
    await eventually(lambda: about(receiver, "flaky", other_live))
    receiver.modes["flaky"] = "ok"
    await eventually(lambda: len(about(receiver, "flaky", live, delivered=True)) == 3, timeout=15)
    delivered = [r.webhook_id for r in about(receiver, "flaky", live, delivered=True)]
    assert delivered == [str(event.id) for event in events]

    log = await client.get(f"/api/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin)
    assert log.status_code == 200, log.text
    first = next(d for d in log.json()["items"] if d["event_id"] == str(events[0].id))
    assert first["status"] == "delivered"
    assert [a["status_code"] for a in first["attempts"]][-1] == 200
    assert all(a["status_code"] == 500 and a["error"] == "HTTP 500" for a in first["attempts"][:-1])
    assert len(first["attempts"]) >= 2


async def test_an_endpoint_that_keeps_failing_is_disabled_then_enabled_again(
    client, receiver: Receiver, js: JetStreamContext, env: dict, admin: dict, settings
):
    endpoint = await register(client, admin, receiver, "down", event_types=["product.featured"])
    receiver.modes["down"] = "hang"  # each attempt times out
    lives = [uuid4() for _ in range(3)]
    first, second, after = (featured(live, n) for n, live in enumerate(lives))
    await publish(js, env, first)
    await publish(js, env, second)
    url = f"/api/webhooks/endpoints/{endpoint['id']}"

    async def disabled() -> dict | None:
        state = (await client.get(url, headers=admin)).json()
        return state if state["status"] == "disabled" else None

    state = await eventually(disabled, timeout=30)
    assert state["disabled_reason"] == "2 deliveries in a row were given up"
    assert state["disabled_at"] is not None
    tried = len(about(receiver, "down", *lives))
    assert tried == 2 * (1 + len(settings.webhooks_retry_delays_s))  # every attempt, no more
    await publish(js, env, after)  # not queued for a disabled endpoint
    await eventually(lambda: handled(settings, after.id))
    test = await client.post(f"{url}/test", headers=admin)
    assert test.status_code == 409

    receiver.modes["down"] = "ok"
    enabled = await client.post(f"{url}/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
    assert enabled.json()["disabled_reason"] is None
    test = await client.post(f"{url}/test", headers=admin)
    assert test.status_code == 202, test.text
    await eventually(lambda: receiver.delivered("down"))
    await asyncio.sleep(0.5)
    (got,) = receiver.delivered("down")
    assert got.event["type"] == "webhook.test" and got.webhook_id == test.json()["event_id"]
    log = (await client.get(f"{url}/deliveries?status=failed", headers=admin)).json()
    assert {d["event_id"] for d in log["items"]} == {str(first.id), str(second.id)}
    assert all(a["error"] == "timed out" for d in log["items"] for a in d["attempts"])


async def test_the_secret_is_shown_once_and_a_rotation_signs_with_both_for_a_while(
    client, receiver: Receiver, js: JetStreamContext, env: dict, admin: dict, settings
):
    endpoint = await register(client, admin, receiver, "rotated", event_types=["product.*"])
    url = f"/api/webhooks/endpoints/{endpoint['id']}"
    assert endpoint["secret"].startswith("whsec_")
    shown = (await client.get(url, headers=admin)).json()
    listed = (await client.get("/api/webhooks/endpoints", headers=admin)).json()
    assert "secret" not in shown and all("secret" not in e for e in listed["items"])
    async with schema_connection(settings, "webhooks") as db:
        sealed = await db.fetchval("SELECT secret FROM endpoints WHERE id = $1", endpoint["id"])
    assert endpoint["secret"] not in sealed  # sealed at rest

    old = receiver.secrets["rotated"]
    rotated = await client.post(f"{url}/rotate-secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["secret"] != old
    event = featured(uuid4(), 1)
    await publish(js, env, event)
    # Verified with the old secret...
    await eventually(lambda: about(receiver, "rotated", event.stream_id, delivered=True))
    (got,) = about(receiver, "rotated", event.stream_id)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    receiver.secrets["rotated"] = rotated.json()["secret"]
    Webhook(receiver.secrets["rotated"]).verify(got.body, got.headers)  # and with the new one


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url"),
        ({"url": "http://user:pw@example.com/", "event_types": ["*"]}, "url"),
        ({"url": "https:///nohost", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2100, "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/", "event_types": ["product.exploded"]}, "event_types"),
        ({"url": "https://example.com/", "event_types": ["nope.*"]}, "event_types"),
        ({"url": "https://example.com/", "event_types": []}, "event_types"),
        (
            {"url": "https://example.com/", "event_types": ["*"], "description": "d" * 501},
            "description",
        ),
        ({"url": "https://example.com/", "event_types": ["*"], "secret": "mine"}, "secret"),
    ],
)
async def test_bad_input_is_refused_with_a_422_and_changes_nothing(client, admin, body, field):
    before = (await client.get("/api/webhooks/endpoints?limit=100", headers=admin)).json()
    answer = await client.post("/api/webhooks/endpoints", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert field in str(answer.json()["detail"])
    after = (await client.get("/api/webhooks/endpoints?limit=100", headers=admin)).json()
    assert after == before


async def test_only_admins_reach_the_endpoints(client, admin):
    viewer = auth(issue_token(secret=INSECURE_JWT_SECRET, user_id="someone"))
    some = f"/api/webhooks/endpoints/{uuid4()}"
    for method, path in (("GET", "/api/webhooks/endpoints"), ("POST", "/api/webhooks/endpoints"),
                         ("GET", some), ("DELETE", some), ("POST", f"{some}/enable")):  # fmt: skip
        assert (await client.request(method, path)).status_code == 401
        assert (await client.request(method, path, headers=viewer)).status_code == 403
    assert (await client.get(some, headers=admin)).status_code == 404
    assert (await client.get(f"{some}/deliveries", headers=admin)).status_code == 404


async def test_lists_page_with_a_cursor(client, receiver: Receiver, admin: dict):
    for n in range(3):
        await register(client, admin, receiver, f"paged-{n}", event_types=["stream.created"])
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/api/webhooks/endpoints{query}", headers=admin)).json()
        seen += [e["id"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) >= 3
    bad = await client.get("/api/webhooks/endpoints?cursor=garbage", headers=admin)
    assert bad.status_code == 400


async def test_the_delivery_log_keeps_only_what_is_recent(
    env: dict, receiver: Receiver, js: JetStreamContext, admin: dict, settings: WebhooksSettings
):
    brief = settings_for(env, db_schema_prefix="whs_", webhooks_log_retention_s=0.5)
    app = create_app(brief)
    async with serving(app, "webhooks") as client:
        endpoint = await register(client, admin, receiver, "pruned", event_types=["cart.added"])
        event = cart_added(uuid4())
        await publish(js, env, event)
        await eventually(lambda: about(receiver, "pruned", event.stream_id, delivered=True))
        log = f"/api/webhooks/endpoints/{endpoint['id']}/deliveries"
        await eventually(lambda: _logged(client, log, admin))
        await asyncio.sleep(0.6)
        await app.state.dispatcher.prune()
        assert (await client.get(log, headers=admin)).json() == {"items": [], "next_cursor": None}
        assert not await handled(brief, event.id)  # its id forgotten too, past retention


async def _logged(client: httpx.AsyncClient, log: str, admin: dict) -> bool:
    items = (await client.get(log, headers=admin)).json()["items"]
    return bool(items) and items[0]["status"] == "delivered"


async def test_an_endpoint_failing_for_too_long_is_disabled_before_anything_is_given_up(
    env: dict, receiver: Receiver, js: JetStreamContext, admin: dict, settings: WebhooksSettings
):
    patient = settings_for(
        env, db_schema_prefix="whs_", webhooks_retry_delays_s=(0.2,) * 20,
        webhooks_disable_after_s=2.5, webhooks_concurrency_per_endpoint=1,
    )  # fmt: skip
    async with serving(create_app(patient), "webhooks") as client:
        endpoint = await register(client, admin, receiver, "stuck", event_types=["cart.added"])
        receiver.modes["stuck"] = "hang"  # each attempt times out after 1 s
        lives = [uuid4() for _ in range(3)]
        for live in lives:
            await publish(js, env, cart_added(live))
        url = f"/api/webhooks/endpoints/{endpoint['id']}"

        async def disabled() -> dict | None:
            state = (await client.get(url, headers=admin)).json()
            return state if state["status"] == "disabled" else None

        state = await eventually(disabled, timeout=15)
        assert state["disabled_reason"].startswith("every attempt failed for ")
        assert state["consecutive_failures"] == 0  # nothing was given up: time decided
        log = (await client.get(f"{url}/deliveries", headers=admin)).json()["items"]
        assert {d["status"] for d in log} == {"pending"}
        # One attempt at a time to this endpoint: none began before the one before it ended.
        tried = sorted(
            (datetime.fromisoformat(a["attempted_at"]), a["duration_ms"])
            for d in log
            for a in d["attempts"]
        )
        assert len(tried) >= 2
        for (began, took), (next_began, _) in itertools.pairwise(tried):
            assert began + timedelta(milliseconds=took - 50) <= next_began
