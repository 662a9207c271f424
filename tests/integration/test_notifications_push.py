"""Web Push from the notifications service to a push-service stand-in over HTTPS that checks
the VAPID token and decrypts the aes128gcm payload: reminders arrive readable, a subscription
the push service says is gone (410) is removed, bad subscriptions are refused with 422."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nats.js import JetStreamContext

from services.notifications.push import b64url
from tests.conftest import eventually
from tests.integration.notifications_support import (
    PUBLIC,
    Live,
    address,
    known,
    running,
    settings_for,
    signed_in,
)
from tests.support.push_service import PushService, running_push_service
from vitrine.mailcatcher import MailCatcher
from vitrine.system import free_port

VAPID_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def push_service() -> Iterator[tuple[PushService, str]]:
    with running_push_service() as running_service:
        yield running_service


@pytest.fixture(scope="module")
async def client(
    env: dict, push_service: tuple[PushService, str]
) -> AsyncIterator[httpx.AsyncClient]:
    _, ca_bundle = push_service
    raw = VAPID_KEY.private_numbers().private_value.to_bytes(32, "big")
    with MailCatcher(port=free_port()) as smtp:
        settings = settings_for(
            env, smtp, db_schema_prefix="push_", vapid_private_key=b64url(raw),
            vapid_subject="mailto:shop@example.com", push_allowed_hosts="127.0.0.1",
            push_ca_bundle=ca_bundle,
        )  # fmt: skip
        async with running(settings) as client:
            yield client


async def browser_subscribed(
    client: httpx.AsyncClient, service: PushService, live: Live
) -> tuple[str, dict]:
    key = (await client.get("/api/live/push/public-key")).json()["public_key"]
    browser, subscription = service.subscribe(application_server_key=key)
    answer = await client.post(
        f"/api/live/streams/{live.id}/reminders",
        json={"channel": "webpush", "subscription": subscription, "language": "en"},
    )
    assert answer.status_code == 201, answer.text
    return browser, answer.json()


async def a_live(client, js, env, admin) -> Live:
    live = Live(js, env, title="Flash sale")
    await live.schedule(datetime.now(UTC) + timedelta(hours=1))
    await known(client, live, admin)
    return live


async def test_the_public_key_is_the_vapid_key(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/live/push/public-key")
    assert answer.status_code == 200
    expected = VAPID_KEY.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert answer.json() == {"public_key": b64url(expected)}


async def test_a_browser_gets_we_are_live_encrypted_and_signed(
    client: httpx.AsyncClient, push_service: tuple[PushService, str], js: JetStreamContext,
    env: dict, admin: dict,
) -> None:  # fmt: skip
    service, _ = push_service
    live = await a_live(client, js, env, admin)
    browser, reminder = await browser_subscribed(client, service, live)
    assert reminder["status"] == "confirmed" and reminder["unsubscribe_token"]
    assert "/push/" not in str(reminder), "the endpoint is not given back"
    await live.start()
    await eventually(lambda: service.to(browser), timeout=20)
    (push,) = service.to(browser)
    assert push.payload["title"] == "“Flash sale” is live now"
    assert push.payload["url"] == f"{PUBLIC}/live/{live.id}"
    assert push.payload["unsubscribe_url"].startswith(f"{PUBLIC}/api/live/reminders/unsubscribe")
    assert push.payload["unsubscribe_label"] == "Stop these messages"  # the notification's action
    assert push.urgency == "high" and push.ttl == 3600
    assert service.refused == []
    counts = (await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)).json()
    assert counts["by_channel"] == {"email": 0, "webpush": 1}


async def test_a_subscription_the_push_service_says_is_gone_is_removed(
    client: httpx.AsyncClient, push_service: tuple[PushService, str], js: JetStreamContext,
    env: dict, admin: dict,
) -> None:  # fmt: skip
    service, _ = push_service
    live = await a_live(client, js, env, admin)
    flaky, _ = await browser_subscribed(client, service, live)
    gone, _ = await browser_subscribed(client, service, live)
    service.browsers[flaky].answers = [429, 503]  # busy: tried again
    service.browsers[gone].gone = True
    await live.start()
    await eventually(lambda: service.to(flaky), timeout=20)

    async def removed() -> bool:
        answer = await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)
        return answer.json()["by_channel"]["webpush"] == 1

    await eventually(removed)
    assert service.to(gone) == []


async def test_unsubscribing_by_the_token_stops_the_pushes(
    client: httpx.AsyncClient, push_service: tuple[PushService, str], js: JetStreamContext,
    env: dict, admin: dict,
) -> None:  # fmt: skip
    service, _ = push_service
    live = await a_live(client, js, env, admin)
    browser, reminder = await browser_subscribed(client, service, live)
    answer = await client.delete(f"/api/live/reminders/{reminder['unsubscribe_token']}")
    assert answer.status_code == 204
    await live.start()
    await asyncio.sleep(1.5)
    assert service.to(browser) == []


async def test_a_person_s_browsers_go_with_their_address_on_erasure(
    client: httpx.AsyncClient, push_service: tuple[PushService, str], js: JetStreamContext,
    env: dict, admin: dict,
) -> None:  # fmt: skip
    """A GDPR request names an address (or a user id): the push subscriptions its owner made
    signed in are theirs too, though they carry no address."""
    service, _ = push_service
    live = await a_live(client, js, env, admin)
    email = address()
    me = signed_in(email)
    url = f"/api/live/streams/{live.id}/reminders"
    assert (await client.post(url, json={}, headers=me)).status_code == 201
    key = (await client.get("/api/live/push/public-key")).json()["public_key"]
    _, subscription = service.subscribe(application_server_key=key)
    pushed = await client.post(
        url, json={"channel": "webpush", "subscription": subscription}, headers=me
    )
    assert pushed.status_code == 201, pushed.text
    _, stranger = service.subscribe(application_server_key=key)  # someone else's browser
    assert (
        await client.post(url, json={"channel": "webpush", "subscription": stranger})
    ).is_success

    for query in ({"email": email}, {"user_id": f"u-{email}"}):
        kept = (await client.get("/api/live/reminders", params=query, headers=admin)).json()
        assert {one["channel"] for one in kept["subscriptions"]} == {"email", "webpush"}, query
        assert stranger["endpoint"] not in str(kept)
    erased = await client.delete("/api/live/reminders", params={"email": email}, headers=admin)
    assert erased.json() == {"subscriptions_deleted": 2}
    counts = (await client.get(url, headers=admin)).json()
    assert counts["by_channel"] == {"email": 0, "webpush": 1}, "the stranger's stays"
    nobody = await client.get("/api/live/reminders", headers=admin)
    assert nobody.status_code == 422, "an address or a user id is needed"


def _subscription(**changes) -> dict:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    raw = b"\x04" + point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")
    subscription = {
        "endpoint": "https://127.0.0.1:9/push/abc",
        "keys": {"p256dh": b64url(raw), "auth": b64url(b"0123456789abcdef")},
    }
    keys = changes.pop("keys", {})
    return {**subscription, **changes, "keys": {**subscription["keys"], **keys}}


@pytest.mark.parametrize(
    "subscription",
    [
        _subscription(endpoint="http://127.0.0.1:9/push/abc"),  # not https
        _subscription(endpoint="https://evil.example/push/abc"),  # not a push service
        _subscription(endpoint="https://127.0.0.1/" + "a" * 2000),
        _subscription(keys={"p256dh": "A" * 5000}),  # oversized
        _subscription(keys={"p256dh": b64url(b"\x04" + b"\x01" * 64)}),  # not on the curve
        _subscription(keys={"auth": b64url(b"short")}),
        _subscription(keys={"auth": "not base64!"}),
        {"endpoint": "https://127.0.0.1:9/push/abc"},  # no keys
    ],
)
async def test_a_bad_push_subscription_is_refused_with_422(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, subscription: dict
) -> None:
    live = await a_live(client, js, env, admin)
    answer = await client.post(
        f"/api/live/streams/{live.id}/reminders",
        json={"channel": "webpush", "subscription": subscription},
    )
    assert answer.status_code == 422, answer.text
    both = await client.post(
        f"/api/live/streams/{live.id}/reminders",
        json={"channel": "webpush", "subscription": _subscription(), "email": "x@example.com"},
    )
    assert both.status_code == 422
