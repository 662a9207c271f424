"""The analytics service over real PostgreSQL, NATS JetStream and Redis: events counted once,
a rebuild that finds the same figures, orders credited by cart and promo code, signed webhooks,
players without a socket, and who may read what."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from nats.js import JetStreamContext
from pydantic import BaseModel

from chassis.db import create_engine, session_factory
from contracts import new_envelope
from contracts.chat import ChatMessage, ChatPosted
from contracts.products import CartAdded, LiveProduct, ProductAdded, ProductClicked
from contracts.streams import StreamCreated, StreamEnded, StreamStarted, StreamStatus
from contracts.viewers import ViewerJoined, ViewerLeft, ViewersUpdated
from services.analytics import report
from services.analytics.app import create_app, migrate
from services.analytics.models import orders
from services.analytics.rebuild import rebuild
from services.analytics.settings import AnalyticsSettings
from tests.conftest import auth, eventually
from tests.integration.test_chat_service import view
from tests.support.services import serving

SECRET = "woo-webhook-secret-0123456789"
# Shopify's app secret being rotated: the old one still verifies until it is removed.
SHOPIFY_SECRET, SHOPIFY_OLD_SECRET = "shpss_new-0123456789abcdef", "shpss_old-fedcba9876543210"


def settings_of(env: dict) -> AnalyticsSettings:
    return AnalyticsSettings(
        **env, woocommerce_webhook_secret=SECRET, player_ttl_s=3, presence_ttl_s=3,
        shopify_webhook_secret=f"{SHOPIFY_OLD_SECRET}, {SHOPIFY_SECRET}",
    )  # fmt: skip


@contextlib.asynccontextmanager
async def running_analytics(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_of(env)
    await migrate(settings)
    app = create_app(settings)
    async with serving(app, "analytics") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def analytics(env) -> AsyncIterator[httpx.AsyncClient]:
    async with running_analytics(env) as client:
        yield client


async def emit(
    js: JetStreamContext, env: dict, stream_id: UUID, payload: BaseModel, *, copies: int = 1,
    producer: str = "test",
) -> None:  # fmt: skip
    """Publish an event; `copies` > 1 stores it again under other message ids (a producer that
    re-sent it after its de-duplication window)."""
    envelope = new_envelope(payload, stream_id=stream_id, producer=producer)
    for _ in range(copies):
        await js.publish(
            f"{env['subject_root']}.{stream_id}.{envelope.type}",
            envelope.model_dump_json().encode(),
            stream=env["jetstream_stream"],
            headers={"Nats-Msg-Id": str(uuid4())},
        )


async def figures(analytics: httpx.AsyncClient, tokens: dict, stream_id: UUID) -> dict:
    answer = await analytics.get(
        f"/api/live/streams/{stream_id}/analytics", headers=auth(tokens["admin"])
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def live_on_air(js, env, analytics, tokens) -> UUID:
    stream_id = uuid4()
    await emit(js, env, stream_id, StreamCreated(stream=view(stream_id, StreamStatus.SCHEDULED)))
    started = view(stream_id, StreamStatus.LIVE).model_copy(
        update={"started_at": datetime.now(UTC)}
    )
    await emit(js, env, stream_id, StreamStarted(stream=started))

    async def on_air():
        answer = await analytics.get(
            f"/api/live/streams/{stream_id}/analytics", headers=auth(tokens["admin"])
        )
        return answer.status_code == 200 and answer.json()["stream"]["status"] == "live"

    await eventually(on_air)
    return stream_id


def card(product_id: UUID, name: str, promo_code: str | None = None) -> LiveProduct:
    return LiveProduct(
        product_id=product_id, name=name, price=Decimal("29.00"), currency="EUR",
        promo_code=promo_code,
    )  # fmt: skip


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "X-WC-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-WC-Webhook-Topic": "order.created",
        "Content-Type": "application/json",
    }


def woo_order(
    order_id: int, *, lines: list[tuple[str, str]], meta=(), coupons=(), **fields
) -> bytes:
    """A WooCommerce order (REST v3); `fields` replace or add top-level ones (status, refunds)."""
    return json.dumps(
        {
            "id": order_id, "status": "processing", "currency": "EUR",
            "date_created_gmt": datetime.now(UTC).replace(tzinfo=None).isoformat(),
            "meta_data": [{"id": i, "key": k, "value": v} for i, (k, v) in enumerate(meta)],
            "coupon_lines": [{"code": c} for c in coupons],
            "line_items": [
                {"id": i, "name": name, "quantity": 1, "total": total, "meta_data": []}
                for i, (name, total) in enumerate(lines)
            ],
        } | fields
    ).encode()  # fmt: skip


def order_id() -> int:
    return secrets.randbelow(10**9)


# --- counted once --------------------------------------------------------------------------------


async def test_events_delivered_twice_are_counted_once(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    product = uuid4()
    await emit(js, env, stream_id, ProductAdded(product=card(product, "Scarf")))
    await emit(js, env, stream_id, ViewerJoined(session_id="s-000001", gateway_id="gw"), copies=3)
    left = ViewerLeft(session_id="s-000001", gateway_id="gw", watched_seconds=42.5)
    await emit(js, env, stream_id, left, copies=2)
    await emit(js, env, stream_id, ProductClicked(product_id=product, session_id="s-1"), copies=2)
    await emit(js, env, stream_id, CartAdded(
        product_id=product, quantity=2, cart_id=uuid4(), session_id="s-1",
        unit_price=Decimal("29.00"), currency="EUR"), copies=2)  # fmt: skip
    message = ChatMessage(id=uuid4(), user_id="u1", display_name="Bob", message="hi",
                          created_at=datetime.now(UTC))  # fmt: skip
    await emit(js, env, stream_id, ChatPosted(message=message), copies=2)
    # An outbox that published the same message again under a new event id.
    await emit(js, env, stream_id, ChatPosted(message=message))
    await emit(js, env, stream_id, ViewersUpdated(current=1, peak=1, total=1, unique=1), copies=2)

    async def settled():
        # Each event family has its own consumer: wait until every one has had its say.
        data = await figures(analytics, tokens, stream_id)
        v, p = data["viewers"], data["products"]
        done = (data["chat"]["messages"] and p["add_to_cart"] and p["clicks"] and data["series"]
                and v["completed_views"] and v["total_views"] and v["peak"])  # fmt: skip
        return data if done else None

    data = await eventually(settled)
    await asyncio.sleep(0.5)  # the copies, had they been counted, would show by now
    data = await figures(analytics, tokens, stream_id)
    assert data["viewers"] | {"current": 1} == {
        "current": 1, "peak": 1, "total_views": 1, "unique_viewers": 1, "completed_views": 1,
        "total_watch_time_s": 42.5, "average_watch_time_s": 42.5,
    }  # fmt: skip
    assert (data["products"]["clicks"], data["products"]["add_to_cart"]) == (1, 1)
    assert data["products"]["items"][0]["quantity_added"] == 2
    assert (data["chat"]["messages"], data["chat"]["chatters"]) == (1, 1)
    assert data["chat"]["chatters_share"] == 1.0


async def test_a_left_before_its_joined_still_makes_one_view(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    left = ViewerLeft(session_id="early-leaver", gateway_id="gw-x", watched_seconds=10)
    await emit(js, env, stream_id, left)
    await emit(js, env, stream_id, ViewerJoined(session_id="early-leaver", gateway_id="gw-x"))

    async def one_view():
        viewers = (await figures(analytics, tokens, stream_id))["viewers"]
        return viewers if viewers["total_views"] and viewers["completed_views"] else None

    viewers = await eventually(one_view)
    await asyncio.sleep(0.5)  # nothing more comes
    viewers = (await figures(analytics, tokens, stream_id))["viewers"]
    assert (viewers["total_views"], viewers["completed_views"]) == (1, 1)
    assert viewers["total_watch_time_s"] == 10.0


# --- orders --------------------------------------------------------------------------------------


async def test_an_order_is_credited_through_its_cart_even_when_the_cart_comes_later(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    scarf, cart = uuid4(), uuid4()
    await emit(js, env, stream_id, ProductAdded(product=card(scarf, "Scarf")))
    body = woo_order(order_id(), lines=[("Scarf", "58.00"), ("Gift wrap", "2.00")],
                     meta=[("_vitrine_cart_id", str(cart))])  # fmt: skip
    answer = await analytics.post(
        "/webhooks/woocommerce/orders", content=body, headers=signed(body)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["streams"] == []  # its cart is not known yet
    await emit(js, env, stream_id, CartAdded(
        product_id=scarf, quantity=2, cart_id=cart, session_id="buyer-1",
        unit_price=Decimal("29.00"), currency="EUR"))  # fmt: skip

    def scarf_row(data: dict) -> dict:
        return next(p for p in data["products"]["items"] if p["product_id"] == str(scarf))

    async def credited():
        # Until the product's card is known, its line is the live's but no product's.
        data = await figures(analytics, tokens, stream_id)
        return data if data["sales"]["orders"] == 1 and scarf_row(data)["orders"] else None

    data = await eventually(credited)
    assert data["sales"]["revenue"] == "60.00" and data["sales"]["currency"] == "EUR"
    assert (scarf_row(data)["orders"], scarf_row(data)["revenue"]) == (1, "58.00")
    assert sum(Decimal(r["revenue"]) for r in data["series"]) == Decimal("60.00")


async def test_an_order_is_credited_through_the_lives_promo_code(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    code = f"LIVE{secrets.token_hex(3).upper()}"
    coat = uuid4()
    await emit(js, env, stream_id, ProductAdded(product=card(coat, "Coat", promo_code=code)))

    # Posted at once: the code may not be known yet; the order is credited when it is.
    body = woo_order(order_id(), lines=[("Coat", "149.00")], coupons=[code.lower()])
    answer = await analytics.post("/webhooks/woocommerce", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text

    async def credited():
        data = await figures(analytics, tokens, stream_id)
        return data if data["sales"]["orders"] == 1 else None

    data = await eventually(credited)
    assert data["sales"]["revenue"] == "149.00"
    assert [p["revenue"] for p in data["products"]["items"]] == ["149.00"]


async def test_an_invalid_signature_is_refused_and_nothing_is_recorded(analytics, env):
    body = woo_order(order_id(), lines=[("Scarf", "58.00")])
    engine = create_engine(env["database_url"], schema="analytics")
    count = sa.select(sa.func.count()).select_from(orders)
    async with engine.connect() as conn:
        before = await conn.scalar(count)
    for headers in (
        signed(body, secret="not-the-secret"),
        {**signed(body), "X-WC-Webhook-Signature": "garbage"},
        {"Content-Type": "application/json"},
        signed(body + b" "),  # signed another body
    ):
        answer = await analytics.post("/webhooks/woocommerce", content=body, headers=headers)
        assert answer.status_code == 401, answer.text
    ping = await analytics.post(
        "/webhooks/woocommerce", content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert ping.status_code == 200
    async with engine.connect() as conn:
        assert await conn.scalar(count) == before
    await engine.dispose()
    junk = b'{"not": "an order"}'
    refused = await analytics.post("/webhooks/woocommerce", content=junk, headers=signed(junk))
    assert refused.status_code == 400


# --- rebuild -------------------------------------------------------------------------------------


async def test_a_rebuild_from_the_retained_events_gives_the_same_figures(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    scarf, coat, cart = uuid4(), uuid4(), uuid4()
    await emit(js, env, stream_id, ProductAdded(product=card(scarf, "Scarf", promo_code="R1")))
    await emit(js, env, stream_id, ProductAdded(product=card(coat, "Coat")))
    for i in range(6):
        session = f"viewer-{i:04d}"
        await emit(js, env, stream_id, ViewerJoined(session_id=session, gateway_id="gw-r"))
        if i % 2:
            await emit(js, env, stream_id, ViewerLeft(session_id=session, gateway_id="gw-r",
                                                       watched_seconds=i * 7.25))  # fmt: skip
        await emit(js, env, stream_id, ProductClicked(product_id=scarf, session_id=session))
        await emit(js, env, stream_id, ViewersUpdated(current=i + 1, peak=i + 1, total=i + 1,
                                                       unique=i + 1))  # fmt: skip
    await emit(js, env, stream_id, CartAdded(
        product_id=coat, quantity=1, cart_id=cart, session_id="viewer-0001",
        unit_price=Decimal("149.00"), currency="EUR"))  # fmt: skip
    for text in ("hello", "love it"):
        message = ChatMessage(id=uuid4(), user_id="u7", display_name="Eve", message=text,
                              created_at=datetime.now(UTC))  # fmt: skip
        await emit(js, env, stream_id, ChatPosted(message=message))
    by_cart = woo_order(
        order_id(), lines=[("Coat", "149.00")], meta=[("vitrine_cart_id", str(cart))]
    )
    by_code = woo_order(order_id(), lines=[("Scarf", "25.00")], coupons=["r1"])
    for body in (by_cart, by_code):
        assert (await analytics.post("/webhooks/woocommerce", content=body,
                                     headers=signed(body))).status_code == 200  # fmt: skip
    ended = view(stream_id, StreamStatus.ENDED).model_copy(update={"ended_at": datetime.now(UTC)})
    await emit(js, env, stream_id, StreamEnded(stream=ended))

    last: list[dict] = []

    async def settled():
        # Every family's consumer has caught up, and nothing moves any more between two looks.
        data = await figures(analytics, tokens, stream_id)
        done = (data["stream"]["status"] == "ended" and data["sales"]["orders"] == 2
                and data["chat"]["messages"] == 2 and data["viewers"]["completed_views"] == 6
                and data["viewers"]["total_views"] == 6 and data["viewers"]["current"] == 6
                and data["viewers"]["peak"] == 6 and data["products"]["clicks"] == 6
                and data["products"]["add_to_cart"] == 1)  # fmt: skip
        still = last == [data]
        last[:] = [data]
        return data if done and still else None

    # The three views left open are closed by analytics itself once their gateway, which never
    # had presence, is given up (`viewer.left` estimates, in the retained events like the rest).
    live = await eventually(settled, interval=0.3, timeout=40)
    schema = f"analytics_rebuilt_{secrets.token_hex(3)}"
    settings = settings_of(env)
    applied = await rebuild(settings, schema=schema)
    assert applied >= 30
    engine = create_engine(env["database_url"], schema=schema)
    try:
        async with session_factory(engine)() as session:
            rebuilt = await report.live_analytics(session, stream_id)
    finally:
        await engine.dispose()
        async with create_engine(env["database_url"], schema=schema).begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    assert rebuilt == live
    assert live["sales"]["revenue"] == "174.00"
    # The gateway's own closings, and the estimates of the others (each a few seconds).
    assert live["viewers"]["total_watch_time_s"] > (7.25 + 21.75 + 36.25)


# --- players -------------------------------------------------------------------------------------


async def test_a_player_registers_once_keeps_alive_and_leaves_once(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    body = {"stream_id": str(stream_id), "session_id": "player-0001"}
    first = await analytics.post("/api/live/viewers", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["heartbeat_s"] == 1 and first.json()["watching"]
    again = await analytics.post("/api/live/viewers", json=body)
    assert again.status_code == 200
    assert again.json()["joined_at"] == first.json()["joined_at"]
    for _ in range(2):
        left = await analytics.put("/api/live/viewers", json=body)
        assert left.status_code == 200 and not left.json()["watching"]

    async def one_view():
        # viewer.left may be consumed before viewer.joined: wait until both are in
        viewers = (await figures(analytics, tokens, stream_id))["viewers"]
        return viewers if viewers["completed_views"] and viewers["total_views"] else None

    viewers = await eventually(one_view)
    assert viewers["completed_views"] == 1 and viewers["total_views"] == 1
    unknown = {"stream_id": str(stream_id), "session_id": "never-registered"}
    assert (await analytics.put("/api/live/viewers", json=unknown)).status_code == 404
    nowhere = {"stream_id": str(uuid4()), "session_id": "player-0001"}
    assert (await analytics.post("/api/live/viewers", json=nowhere)).status_code == 404
    bad = {"stream_id": str(stream_id), "session_id": "x"}
    assert (await analytics.post("/api/live/viewers", json=bad)).status_code == 422


async def test_a_silent_player_leaves_by_itself(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    body = {"stream_id": str(stream_id), "session_id": "player-quiet"}
    assert (await analytics.post("/api/live/viewers", json=body)).status_code == 201

    async def gone():
        viewers = (await figures(analytics, tokens, stream_id))["viewers"]
        return viewers if viewers["completed_views"] and viewers["total_views"] else None

    viewers = await eventually(gone, timeout=15)
    assert (
        viewers["completed_views"] == 1
        and viewers["total_views"] == 1
        and viewers["total_watch_time_s"] < 1
    )


# --- access --------------------------------------------------------------------------------------


async def test_only_admins_read_a_lives_analytics(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    for suffix in ("analytics", "analytics.csv"):
        path = f"/api/live/streams/{stream_id}/{suffix}"
        for headers, expected in (
            ({}, 401),
            (auth(tokens["user"]), 403),
            (auth(tokens["moderator"]), 403),
            ({"Authorization": "Bearer forged"}, 401),
            (auth(tokens["admin"]), 200),
        ):
            assert (await analytics.get(path, headers=headers)).status_code == expected, path
    csv = await analytics.get(
        f"/api/live/streams/{stream_id}/analytics.csv", headers=auth(tokens["admin"])
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "minute,viewers,messages,clicks,add_to_cart,revenue"
    unknown = await analytics.get(
        f"/api/live/streams/{uuid4()}/analytics", headers=auth(tokens["admin"])
    )
    assert unknown.status_code == 404
    # Anyone may register a player.
    body = {"stream_id": str(stream_id), "session_id": "anyone-123"}
    assert (await analytics.post("/api/live/viewers", json=body)).status_code == 201
    signed_in = {"stream_id": str(stream_id), "session_id": "someone-123"}
    registered = await analytics.post(
        "/api/live/viewers", json=signed_in, headers=auth(tokens["user"])
    )
    assert registered.status_code == 201
