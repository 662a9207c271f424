"""AWS IVS through the streams service's HTTP API, over real PostgreSQL and NATS: channels made
in moto, EventBridge events posted to the webhook, and featured products pushed into the video as
timed metadata (botocore's Stubber answers the calls moto does not implement)."""

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import boto3
import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from moto import mock_aws
from nats.js import JetStreamContext
from pydantic import BaseModel

from contracts import new_envelope, subject_for
from contracts.products import LiveProduct, ProductFeatured, ProductUnfeatured
from services.streams.app import create_app, migrate
from services.streams.providers import ivs
from services.streams.settings import StreamsSettings
from tests.conftest import auth, eventually
from tests.support import mux
from tests.support.ivs import REGION, StubbedIvs, recording_state, stream_state
from tests.support.services import jetstream

WEBHOOK_SECRET, ENV_SECRET = "ivs-shared-secret-0123456789", "ivs-secret-from-the-environment"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RECORDING = "arn:aws:ivs:eu-west-1:123456789012:recording-configuration/AbCdef1G2hij"
REPLAYS = "https://d111111abcdef8.cloudfront.net"
WEBHOOK = "/webhooks/ivs"
SECRET_HEADER = "X-Vitrine-Webhook-Secret"
MUX_SECRET = "whsec-mux-signing-key-0123456789"


@pytest.fixture(scope="module")
async def settings(env: dict) -> StreamsSettings:
    # A schema of its own: these tests change the platform settings.
    settings = StreamsSettings(
        **{**env, "db_schema_prefix": "ivs_"},
        grace_check_interval_s=0.1,
        rtmp_reconnect_grace_s=60,
        ivs_webhook_secret=ENV_SECRET,
    )
    await migrate(settings)
    return settings


@contextlib.asynccontextmanager
async def running(settings: StreamsSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://streams"
        ) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """moto in place of AWS for the whole module, and a client to look at what it holds."""
    with mock_aws():
        yield boto3.client(
            "ivs", region_name=REGION, aws_access_key_id="AKIATEST", aws_secret_access_key="test"
        )


@pytest.fixture(scope="module")
async def client(settings: StreamsSettings, aws: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as client:
        yield client


@pytest.fixture(scope="module")
async def js(env: dict) -> AsyncIterator[JetStreamContext]:
    async with jetstream(env) as js:
        yield js


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return auth(tokens["admin"])


async def choose_ivs(client: httpx.AsyncClient, admin: dict, **extra_secrets: str) -> dict:
    """IVS as the platform, with fresh access keys (so no client made before is used again)."""
    answer = await client.put(
        "/api/live/settings",
        json={
            "platform": "aws_ivs",
            "config": {
                "region": REGION,
                "latency_mode": "low",
                "channel_type": "STANDARD",
                "recording_configuration_arn": RECORDING,
                "replay_base_url": REPLAYS,
            },
            "secrets": {
                "access_key_id": f"AKIA{secrets.token_hex(8).upper()}",
                "secret_access_key": SECRET_ACCESS_KEY,
                "ivs_webhook_secret": WEBHOOK_SECRET,
                **extra_secrets,
            },
        },
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
async def on_ivs(client: httpx.AsyncClient, admin: dict) -> AsyncIterator[dict]:
    yield await choose_ivs(client, admin)
    await client.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)


async def create_live(client: httpx.AsyncClient, admin: dict) -> dict:
    response = await client.post("/api/live/streams", json={"title": "IVS live"}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def channel_of(aws: Any, live: dict) -> dict:
    """moto's channel behind a Vitrine live."""
    channels = aws.list_channels(filterByName=f"vitrine-{live['id']}")["channels"]
    assert len(channels) == 1
    return aws.get_channel(arn=channels[0]["arn"])["channel"]


async def live_of(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict:
    return (await client.get(f"/api/live/streams/{stream_id}", headers=admin)).json()


async def send(
    client: httpx.AsyncClient, body: bytes, *, secret: str | None = WEBHOOK_SECRET
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return await client.post(WEBHOOK, content=body, headers=headers)


# --- channels ------------------------------------------------------------------------------------


async def test_an_ivs_live_gets_its_own_channel_and_only_admins_see_how_to_publish(
    client, aws, on_ivs, admin
):
    assert on_ivs["config"]["latency_mode"] == "LOW"
    for name, masked in on_ivs["secrets"].items():
        assert masked and SECRET_ACCESS_KEY not in masked and WEBHOOK_SECRET not in masked, name

    live = await create_live(client, admin)
    channel = channel_of(aws, live)
    assert channel["tags"] == {"vitrine:stream_id": live["id"]}
    assert (channel["latencyMode"], channel["type"]) == ("LOW", "STANDARD")
    assert channel["recordingConfigurationArn"] == RECORDING
    assert live["platform"] == "aws_ivs"
    assert live["obs"] == {
        "server": f"rtmps://{channel['ingestEndpoint']}:443/app/",
        "stream_key": live["stream_key"],
    }
    assert live["stream_key"].startswith("sk_eu-west-1_")
    assert live["playback_url"] == channel["playbackUrl"]

    for response in (
        await client.get(f"/api/live/streams/{live['id']}"),
        await client.get("/api/live/streams"),
    ):
        assert response.status_code == 200
        assert live["stream_key"] not in response.text
        assert channel["arn"] not in response.text and "rtmps://" not in response.text
    settings = await client.get("/api/live/settings", headers=admin)
    assert SECRET_ACCESS_KEY not in settings.text and WEBHOOK_SECRET not in settings.text

    gone = await client.delete(f"/api/live/streams/{live['id']}", headers=admin)
    assert gone.status_code == 204
    assert not aws.list_channels(filterByName=f"vitrine-{live['id']}")["channels"]


async def test_deleting_a_live_whose_channel_is_already_gone_still_deletes_it(
    client, aws, on_ivs, admin
):
    live = await create_live(client, admin)
    aws.delete_channel(arn=channel_of(aws, live)["arn"])
    assert (
        await client.delete(f"/api/live/streams/{live['id']}", headers=admin)
    ).status_code == 204


async def test_rotating_a_key_replaces_the_channels_stream_key(
    client, aws, on_ivs, admin, monkeypatch
):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    stub = StubbedIvs()
    monkeypatch.setattr(ivs, "new_client", stub.new_client)
    old = arn.replace(":channel/", ":stream-key/")
    stub.answer("list_stream_keys", {"streamKeys": [{"arn": old, "channelArn": arn}]})
    stub.answer("delete_stream_key", {}, {"arn": old})
    stub.answer(
        "create_stream_key",
        {"streamKey": {"arn": f"{old}2", "channelArn": arn, "value": "sk_eu-west-1_rotated"}},
        {"channelArn": arn, "tags": {"vitrine:stream_id": live["id"]}},
    )
    rotated = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["stream_key"] == "sk_eu-west-1_rotated"
    stub.stubber.assert_no_pending_responses()

    stub.fail("list_stream_keys", "AccessDeniedException", 403)
    refused = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    assert refused.status_code == 502
    assert refused.json() == {"detail": "IVS answered 403: AccessDeniedException"}
    assert (await live_of(client, admin, live["id"]))["stream_key"] == "sk_eu-west-1_rotated"


# --- EventBridge ---------------------------------------------------------------------------------


async def test_ivs_events_take_a_live_on_air_and_into_a_replay(client, aws, js, env, on_ivs, admin):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    started = await js.subscribe(
        subject_for(live["id"], "stream.started", root=env["subject_root"]),
        stream=env["jetstream_stream"],
        ordered_consumer=True,
    )
    t0 = datetime.now(UTC)

    created = await send(client, stream_state(arn, "Session Created", at=t0))
    assert created.json() == {"outcome": "applied"}
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("scheduled", "connected")

    await send(client, stream_state(arn, "Stream Start", at=t0 + timedelta(seconds=1)))
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("live", "live")
    event = orjson.loads((await started.next_msg(timeout=10)).data)
    assert (event["type"], event["data"]["stream"]["status"]) == ("stream.started", "live")
    await started.unsubscribe()

    failure = await send(client, stream_state(arn, "Stream Failure", at=t0 + timedelta(seconds=2)))
    assert failure.json() == {"outcome": "applied"}
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("live", "failed")
    assert after["last_webhook"]["type"] == "Stream Failure"

    await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    prefix = "ivs/v1/123456789012/AbCdef1G2hij/2024/5/16/15/54/st-1AbCdEfGhIjKlMn"
    answer = await send(client, recording_state(arn, "Recording End", prefix=prefix))
    assert answer.json() == {"outcome": "applied"}
    after = await live_of(client, admin, live["id"])
    assert after["replay_url"] == f"{REPLAYS}/{prefix}/media/hls/master.m3u8"
    assert (after["last_webhook"]["source"], after["last_webhook"]["type"]) == (
        "ivs",
        "Recording End",
    )


async def test_events_without_the_shared_secret_answer_401_and_change_nothing(
    client, aws, on_ivs, admin
):
    live = await create_live(client, admin)
    body = stream_state(channel_of(aws, live)["arn"], "Stream Start")
    for secret in (None, "", "not-the-secret", WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "x"):
        assert (await send(client, body, secret=secret)).status_code == 401, secret
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"], after["last_webhook"]) == (
        "scheduled",
        None,
        None,
    )
    # The environment's secret is accepted besides the admin's.
    assert (await send(client, body, secret=ENV_SECRET)).json() == {"outcome": "applied"}
    # With the secret but not an IVS event: refused without a 500.
    for junk in (b"not json", b"{}", body.replace(b'"aws.ivs"', b'"aws.s3"')):
        assert (await send(client, junk)).status_code == 400


async def test_duplicate_late_and_out_of_order_events_never_move_a_live_backwards(
    client, aws, on_ivs, admin
):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    t0 = datetime.now(UTC)

    start = stream_state(arn, "Stream Start", event_id="eb-start-1", at=t0)
    assert (await send(client, start)).json() == {"outcome": "applied"}
    assert (await send(client, start)).json() == {"outcome": "duplicate"}

    # Session Created happened before Stream Start but arrives after it.
    late = await send(client, stream_state(arn, "Session Created", at=t0 - timedelta(seconds=2)))
    assert late.json() == {"outcome": "ignored"}
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("live", "live")
    assert after["last_webhook"]["outcome"] == "ignored"

    await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    again = await send(client, stream_state(arn, "Stream Start", at=t0 + timedelta(seconds=5)))
    assert again.json() == {"outcome": "ignored"}  # an ended live stays ended
    assert (await live_of(client, admin, live["id"]))["status"] == "ended"

    other = stream_state("arn:aws:ivs:eu-west-1:123456789012:channel/someoneElse", "Stream Start")
    assert (await send(client, other)).json() == {"outcome": "ignored"}


async def test_an_encoder_coming_back_keeps_the_live_and_one_that_does_not_ends_it(
    client, aws, settings, on_ivs, admin
):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    t0 = datetime.now(UTC) - timedelta(seconds=30)
    await send(client, stream_state(arn, "Stream Start", at=t0))

    # The module's service waits 60 s for an encoder that left.
    await send(client, stream_state(arn, "Stream End", at=t0 + timedelta(seconds=1)))
    left = await live_of(client, admin, live["id"])
    assert (left["status"], left["provider_state"]) == ("live", "disconnected")
    assert left["end_deadline"] is not None
    await send(client, stream_state(arn, "Session Created", at=t0 + timedelta(seconds=2)))
    back = await live_of(client, admin, live["id"])
    assert (back["status"], back["provider_state"], back["end_deadline"]) == (
        "live",
        "connected",
        None,
    )

    # A service with a short grace hears the encoder leave for good: the live ends.
    short = settings.model_copy(update={"rtmp_reconnect_grace_s": 0.2})
    async with running(short) as impatient:
        await send(impatient, stream_state(arn, "Stream End", at=t0 + timedelta(seconds=3)))
        ended = await eventually(lambda: _ended(client, admin, live["id"]), timeout=10)
    assert (ended["provider_state"], ended["end_deadline"]) == ("disconnected", None)


async def _ended(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict | None:
    live = await live_of(client, admin, stream_id)
    return live if live["status"] == "ended" else None


async def test_the_ivs_secret_is_named_apart_from_muxs_and_mux_s_key_never_opens_the_ivs_webhook(
    client, aws, admin
):
    # The admin set up Mux first, then moved to IVS: the settings keep both platforms' secrets.
    mux_settings = {"platform": "mux", "secrets": {"webhook_secret": MUX_SECRET}}
    assert (await client.put("/api/live/settings", json=mux_settings, headers=admin)).is_success
    previous = "ivs-previous-secret-0123456789"
    try:
        stored = (await choose_ivs(client, admin, ivs_webhook_secret_previous=previous))["secrets"]
        assert stored["webhook_secret"].endswith(MUX_SECRET[-4:])  # Mux's, not overwritten
        assert stored["ivs_webhook_secret"].endswith(WEBHOOK_SECRET[-4:])
        live = await create_live(client, admin)
        arn = channel_of(aws, live)["arn"]

        connected = stream_state(arn, "Session Created")
        assert (await send(client, connected, secret=MUX_SECRET)).status_code == 401
        assert (await live_of(client, admin, live["id"]))["provider_state"] is None
        assert (await send(client, connected, secret=previous)).json() == {"outcome": "applied"}
        started = stream_state(arn, "Stream Start")
        assert (await send(client, started)).json() == {"outcome": "applied"}

        # Mux's webhooks are still checked with Mux's own key.
        body = mux.webhook("video.live_stream.active", {"id": "not-ours"})
        heard = await client.post(
            "/webhooks/mux",
            content=body,
            headers={"Mux-Signature": mux.signature(body, MUX_SECRET)},
        )
        assert heard.status_code == 200, heard.text
    finally:
        cleared = {"webhook_secret": None, "ivs_webhook_secret_previous": None}
        await client.put(
            "/api/live/settings",
            json={"platform": "nginx_rtmp", "secrets": cleared},
            headers=admin,
        )


# --- featured products inside the video ----------------------------------------------------------


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
