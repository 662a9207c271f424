"""AWS IVS through the streams service's HTTP API, over real PostgreSQL and NATS: channels made
in moto and EventBridge events posted to the webhook with its shared secret (botocore's Stubber
answers the calls moto does not implement). Timed metadata: test_streams_ivs_metadata."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import orjson
import pytest
from moto import mock_aws

from contracts import subject_for
from services.streams.app import create_app, migrate
from services.streams.providers import ivs
from services.streams.settings import StreamsSettings
from tests.conftest import eventually
from tests.support import mux
from tests.support.ivs import (
    RECORDING,
    REGION,
    REPLAYS,
    SECRET_ACCESS_KEY,
    WEBHOOK_SECRET,
    StubbedIvs,
    channel_of,
    choose_ivs,
    create_live,
    live_of,
    recording_state,
    send,
    stream_state,
)
from tests.support.services import serving

ENV_SECRET = "ivs-secret-from-the-environment"
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


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """moto in place of AWS for the whole module, and a client to look at what it holds."""
    with mock_aws():
        yield boto3.client(
            "ivs", region_name=REGION, aws_access_key_id="AKIATEST", aws_secret_access_key="test"
        )


@pytest.fixture(scope="module")
async def client(settings: StreamsSettings, aws: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "streams") as client:
        yield client


@pytest.fixture
async def on_ivs(client: httpx.AsyncClient, admin: dict) -> AsyncIterator[dict]:
    yield await choose_ivs(client, admin)
    await client.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)


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


async def test_ending_an_ivs_live_deletes_its_keys_then_stops_the_stream(
    client, aws, on_ivs, admin, monkeypatch
):
    """moto has no stop_stream (nor stream keys): botocore's Stubber answers as IVS would."""
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    await send(client, stream_state(arn, "Stream Start"))
    stub = StubbedIvs()
    monkeypatch.setattr(ivs, "new_client", stub.new_client)
    key = arn.replace(":channel/", ":stream-key/")
    stub.answer("list_stream_keys", {"streamKeys": [{"arn": key, "channelArn": arn}]})
    stub.answer("delete_stream_key", {}, {"arn": key})
    stub.answer("stop_stream", {}, {"channelArn": arn})
    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "disconnected")
    stub.stubber.assert_no_pending_responses()
    # The key goes first: an encoder set to reconnect cannot resume the broadcast.
    assert [name for name, _, _ in stub.calls] == [
        "ListStreamKeys", "DeleteStreamKey", "StopStream",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "status", "state"),
    [
        ("ChannelNotBroadcasting", 404, "disconnected"),
        ("AccessDeniedException", 403, "stop_failed"),
    ],
)
async def test_an_ivs_channel_not_broadcasting_or_refusing_still_lets_the_live_end(
    client, aws, on_ivs, admin, monkeypatch, code, status, state
):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    await send(client, stream_state(arn, "Stream Start"))
    stub = StubbedIvs()
    monkeypatch.setattr(ivs, "new_client", stub.new_client)
    stub.answer("list_stream_keys", {"streamKeys": []})
    stub.fail("stop_stream", code, status)
    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", state)


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


async def test_ivs_streams_are_the_recordings_takes_and_its_length_comes_at_its_end(
    client, aws, on_ivs, admin
):
    live = await create_live(client, admin)
    arn = channel_of(aws, live)["arn"]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    for name, second in [("Stream Start", 0), ("Stream End", 40), ("Session Ended", 41),
                         ("Stream Start", 50), ("Stream End", 80)]:  # fmt: skip
        await send(client, stream_state(arn, name, at=t0 + timedelta(seconds=second)))
    await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    await send(client, recording_state(arn, "Recording End"))  # recording_duration_ms: 28435
    recording = (await live_of(client, admin, live["id"]))["recording"]
    moments = [(t["started_at"], t["ended_at"]) for t in recording["takes"]]
    assert moments == [
        tuple((t0 + timedelta(seconds=s)).isoformat().replace("+00:00", "Z") for s in pair)
        for pair in ((0, 40), (50, 80))
    ]
    assert recording["duration_s"] == 28.435


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
    async with serving(create_app(short), "streams") as impatient:
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
