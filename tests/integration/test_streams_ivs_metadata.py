"""Featured products inside the video of a live on air on AWS IVS, through the streams service
over real PostgreSQL and NATS: product events published on the bus become timed metadata (calls
answered by botocore's Stubber, moto has no PutMetadata), paced, retried, and kept in order by
every replica."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import boto3
import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from moto import mock_aws
from nats.js import JetStreamContext
from pydantic import BaseModel
from sqlmodel import col

from contracts import Envelope, new_envelope, subject_for
from contracts.products import LiveProduct, ProductFeatured, ProductUnfeatured
from services.streams.app import create_app, migrate
from services.streams.ivs_metadata import DURABLE, FeaturedProductSync
from services.streams.models import LiveStream
from services.streams.providers import ivs
from services.streams.settings import StreamsSettings
from tests.conftest import eventually
from tests.support.ivs import (
    REGION,
    StubbedIvs,
    channel_of,
    choose_ivs,
    create_live,
    live_of,
    send,
    stream_state,
)
from tests.support.services import serving


@pytest.fixture(scope="module")
async def settings(env: dict) -> StreamsSettings:
    # A schema of its own: these tests change the platform settings.
    settings = StreamsSettings(**{**env, "db_schema_prefix": "ivs_metadata_"})
    await migrate(settings)
    return settings


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """moto in place of AWS for the whole module, and a client to look at what it holds."""
    with mock_aws():
        yield boto3.client(
            "ivs", region_name=REGION, aws_access_key_id="AKIATEST", aws_secret_access_key="test"
        )


@pytest.fixture(scope="module")
def app(settings: StreamsSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="module")
async def client(app: FastAPI, aws: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app, "streams") as client:
        yield client


@pytest.fixture
async def on_ivs(client: httpx.AsyncClient, admin: dict) -> AsyncIterator[dict]:
    yield await choose_ivs(client, admin)
    await client.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)


async def publish(js: JetStreamContext, env: dict, stream_id: str, payload: BaseModel) -> UUID:
    """What the products service would publish; returns the event's id."""
    envelope = new_envelope(payload, stream_id=UUID(stream_id), producer="products")
    await js.publish(
        subject_for(stream_id, envelope.type, root=env["subject_root"]),
        envelope.model_dump_json().encode(),
        stream=env["jetstream_stream"],
        headers={"Nats-Msg-Id": str(envelope.id)},
    )
    return envelope.id


def product(**fields: Any) -> LiveProduct:
    values = {
        "product_id": uuid4(),
        "name": "Silk scarf",
        "price": Decimal("49.90"),
        "live_price": Decimal("39.90"),
        "currency": "EUR",
        "promo_code": "LIVE10",
        "image_url": "https://shop.example/scarf.jpg",
        **fields,
    }
    return LiveProduct(**values)


async def ivs_live_on_air(
    client: httpx.AsyncClient, aws: Any, admin: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, str, StubbedIvs]:
    """A live on air on IVS (its channel in moto), then IVS's answers given by a stub."""
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    await send(client, stream_state(arn, "Stream Start"))
    assert (await live_of(client, admin, live["id"]))["status"] == "live"
    stub = StubbedIvs()
    monkeypatch.setattr(ivs, "new_client", stub.new_client)
    await choose_ivs(client, admin)  # new keys: the consumer builds a client from the stub
    return live, arn, stub


async def test_a_featured_product_is_pushed_into_the_video_and_throttling_is_retried(
    client, aws, js, env, on_ivs, admin, monkeypatch
):
    scheduled = await create_live(client, admin)  # not on air: nothing to push
    live, arn, stub = await ivs_live_on_air(client, aws, admin, monkeypatch)
    stub.fail("put_metadata", "ThrottlingException", 429)
    stub.answer("put_metadata", {})
    stub.answer("put_metadata", {})
    big = product(name="Écharpe en soie 🧣 " * 12, image_url="https://cdn.example/" + "i" * 900)

    await publish(js, env, scheduled["id"], ProductFeatured(product=product()))
    featured_id = await publish(js, env, live["id"], ProductFeatured(product=big))
    unfeatured_id = await publish(js, env, live["id"], ProductUnfeatured(product_id=uuid4()))
    await eventually(lambda: len(stub.made("PutMetadata")) == 3, timeout=20)
    calls = stub.made("PutMetadata")
    assert all(call["channelArn"] == arn for call in calls)
    assert calls[0]["metadata"] == calls[1]["metadata"]  # the throttled one, tried again
    documents = [orjson.loads(call["metadata"]) for call in calls[1:]]
    # In order: the un-featuring waited for the throttled featuring (one consumer for both).
    assert [(d["type"], d["event_id"]) for d in documents] == [
        ("product.featured", str(featured_id)),
        ("product.unfeatured", str(unfeatured_id)),
    ]
    for call in calls:
        assert len(call["metadata"].encode()) <= 1024
    card = next(d for d in documents if d["type"] == "product.featured")["product"]
    assert card["id"] == str(big.product_id)
    assert (card["price"], card["live_price"], card["currency"]) == ("49.90", "39.90", "EUR")
    assert (card["promo_code"], card["add_to_cart"]) == ("LIVE10", "/api/live/cart/items")
    assert "image_url" not in card  # too long to fit with the rest
    stub.stubber.assert_no_pending_responses()


async def test_featured_products_reach_a_channel_at_most_five_times_a_second(
    client, aws, js, env, on_ivs, admin, monkeypatch
):
    live, _, stub = await ivs_live_on_air(client, aws, admin, monkeypatch)
    stub.fail("put_metadata", "ChannelNotBroadcasting", 404)  # nothing to do, nothing retried
    products = [product(name=f"Scarf {n}") for n in range(8)]
    for _ in products:
        stub.answer("put_metadata", {})
    for featured in [product(name="Before the encoder"), *products]:
        await publish(js, env, live["id"], ProductFeatured(product=featured))

    await eventually(lambda: len(stub.made("PutMetadata")) == 9, timeout=30)
    names = [orjson.loads(c["metadata"])["product"]["name"] for c in stub.made("PutMetadata")]
    assert names == ["Before the encoder", *[p.name for p in products]]  # in order, none lost
    times = stub.times("PutMetadata")
    for first, sixth in zip(times, times[5:], strict=False):
        assert sixth - first >= 1.0 - 1e-3  # (asyncio may wake a timer a hair early)
    stub.stubber.assert_no_pending_responses()


async def test_both_featured_events_come_through_one_durable_consumer(client, js, env):
    stream = env["jetstream_stream"]

    async def ours() -> dict[str, Any]:
        consumers = {info.name: info.config for info in await js.consumers_info(stream)}
        return {name: c for name, c in consumers.items() if name.startswith("ivs_metadata_")}

    consumers = await eventually(ours)  # made once the service has started
    durable = f"ivs_metadata_{DURABLE}"  # named like the schemas of its deployment
    assert set(consumers) == {durable}
    assert consumers[durable].filter_subject == f"{env['subject_root']}.*.product.>"


# --- several replicas ----------------------------------------------------------------------------


class GatedIvs:
    """An IVS client whose PutMetadata calls (made in boto3's thread) can be held at a gate."""

    def __init__(self) -> None:
        self.pushed: list[str] = []  # the event ids, in the order the calls began
        self.gate = threading.Event()
        self.gate.set()

    def new_client(self, **_: Any) -> "GatedIvs":
        return self

    def put_metadata(self, *, channelArn: str, metadata: str) -> dict:
        self.pushed.append(orjson.loads(metadata)["event_id"])
        assert self.gate.wait(timeout=10)
        return {}


@pytest.fixture
async def gated_live(
    client: httpx.AsyncClient, aws: Any, on_ivs: dict, admin: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, str, GatedIvs]:
    """A live on air on IVS whose timed metadata goes to a GatedIvs."""
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    await send(client, stream_state(arn, "Stream Start"))
    gated = GatedIvs()
    monkeypatch.setattr(ivs, "new_client", gated.new_client)
    return live, arn, gated


def replica(app: FastAPI) -> FeaturedProductSync:
    """What another streams process runs: nothing in memory shared with the others."""
    return FeaturedProductSync(deps=app.state.deps)


async def handle(app: FastAPI, sync: FeaturedProductSync, envelope: Envelope) -> None:
    """As the consumer does: the handler in the event's transaction."""
    async with app.state.sessions() as session, session.begin():
        await sync.on_product_event(session, envelope)


def product_event(live: dict, payload: BaseModel, *, ago_s: float) -> Envelope:
    moment = datetime.now(UTC) - timedelta(seconds=ago_s)
    return new_envelope(
        payload, stream_id=UUID(live["id"]), producer="products", occurred_at=moment
    )


async def test_an_event_older_than_one_another_replica_pushed_is_not_pushed(app, gated_live):
    live, _, gated = gated_live
    scarf = uuid4()
    featured = product_event(live, ProductFeatured(product=product(product_id=scarf)), ago_s=2)
    unfeatured = product_event(live, ProductUnfeatured(product_id=scarf), ago_s=1)
    later = product_event(live, ProductFeatured(product=product()), ago_s=0)

    await handle(app, replica(app), unfeatured)
    await handle(app, replica(app), featured)  # delivered late, to another replica
    await handle(app, replica(app), later)
    assert gated.pushed == [str(unfeatured.id), str(later.id)]


@pytest.mark.parametrize("first", ["older", "newer"])
async def test_replicas_take_turns_per_live_and_never_hold_the_live_itself(
    app, client, admin, gated_live, first
):
    live, arn, gated = gated_live
    scarf = uuid4()
    older = product_event(live, ProductFeatured(product=product(product_id=scarf)), ago_s=1)
    newer = product_event(live, ProductUnfeatured(product_id=scarf), ago_s=0)
    one, other = (older, newer) if first == "older" else (newer, older)

    gated.gate.clear()  # IVS is slow to answer the first call
    held = asyncio.create_task(handle(app, replica(app), one))
    await eventually(lambda: gated.pushed == [str(one.id)])
    waiting = asyncio.create_task(handle(app, replica(app), other))
    await asyncio.sleep(0.5)
    assert gated.pushed == [str(one.id)] and not waiting.done()

    # Meanwhile the live is not locked: webhooks, start and end go on.
    async with app.state.sessions() as session, session.begin():
        locked = sa.select(LiveStream).where(col(LiveStream.id) == UUID(live["id"]))
        await session.execute(locked.with_for_update(nowait=True))
    failure = await asyncio.wait_for(send(client, stream_state(arn, "Stream Failure")), 5)
    assert failure.json() == {"outcome": "applied"}

    gated.gate.set()
    await asyncio.wait_for(asyncio.gather(held, waiting), 10)
    # The older one goes in first, or not at all once the newer one is in.
    expected = [older, newer] if first == "older" else [newer]
    assert gated.pushed == [str(event.id) for event in expected]
    assert (await live_of(client, admin, live["id"]))["provider_state"] == "failed"
