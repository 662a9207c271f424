"""Featured products inside the video of a live on air on AWS IVS, through the streams service
over real PostgreSQL and NATS: product events published on the bus become timed metadata (calls
answered by botocore's Stubber, moto has no PutMetadata), paced, retried and kept in order."""

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import boto3
import httpx
import orjson
import pytest
from fastapi import FastAPI
from moto import mock_aws
from nats.js import JetStreamContext
from pydantic import BaseModel

from contracts import new_envelope, subject_for
from contracts.products import LiveProduct, ProductFeatured, ProductUnfeatured
from services.streams.app import create_app, migrate
from services.streams.providers import ivs
from services.streams.settings import StreamsSettings
from tests.conftest import auth, eventually
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
from tests.support.services import jetstream, serving


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


@pytest.fixture(scope="module")
async def js(env: dict) -> AsyncIterator[JetStreamContext]:
    async with jetstream(env) as js:
        yield js


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return auth(tokens["admin"])


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
    await eventually(lambda: len(stub.made("PutMetadata")) == 2, timeout=20)
    # (published once that one is in: an event older than one shown already is not shown)
    unfeatured_id = await publish(js, env, live["id"], ProductUnfeatured(product_id=uuid4()))
    await eventually(lambda: len(stub.made("PutMetadata")) == 3, timeout=20)
    calls = stub.made("PutMetadata")
    assert all(call["channelArn"] == arn for call in calls)
    assert calls[0]["metadata"] == calls[1]["metadata"]  # the throttled one, tried again
    documents = [orjson.loads(call["metadata"]) for call in calls[1:]]
    assert {(d["type"], d["event_id"]) for d in documents} == {
        ("product.featured", str(featured_id)),
        ("product.unfeatured", str(unfeatured_id)),
    }
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
