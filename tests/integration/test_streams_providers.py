"""Video providers through the streams service's HTTP API, over real PostgreSQL and NATS: Mux
against a local stand-in, hostile webhooks, and nginx-rtmp's reconnect grace."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.streams.app import create_app, migrate
from services.streams.settings import StreamsSettings
from tests.conftest import eventually
from tests.support import mux

TOKEN_ID, TOKEN_SECRET = "mux-token-id", "mux-token-secret-0123456789"
WEBHOOK_SECRET, PREVIOUS_SECRET = "whsec-current-0123456789", "whsec-previous-0123456789"
ENV_SECRET = "whsec-from-the-environment"
NGINX = "/webhooks/nginx-rtmp"


@pytest.fixture(scope="module")
async def settings(env: dict) -> StreamsSettings:
    # A schema of its own: these tests change the platform settings.
    settings = StreamsSettings(
        **{**env, "db_schema_prefix": "providers_"},
        grace_check_interval_s=0.1,
        mux_webhook_secrets=[ENV_SECRET],
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
async def client(settings: StreamsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as client:
        yield client


@pytest.fixture(scope="module")
def stand_in() -> Iterator[mux.MuxStandIn]:
    with mux.MuxStandIn(token_id=TOKEN_ID, token_secret=TOKEN_SECRET) as server:
        yield server


@pytest.fixture
async def on_mux(
    client: httpx.AsyncClient, stand_in: mux.MuxStandIn, admin: dict
) -> AsyncIterator[None]:
    answer = await client.put(
        "/api/live/settings",
        json={
            "platform": "mux",
            "config": {"api_url": stand_in.url, "reconnect_window": 30},
            "secrets": {
                "token_id": TOKEN_ID,
                "token_secret": TOKEN_SECRET,
                "webhook_secret": WEBHOOK_SECRET,
                "webhook_secret_previous": PREVIOUS_SECRET,
            },
        },
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    yield
    await client.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)


async def create_live(client: httpx.AsyncClient, admin: dict) -> dict:
    response = await client.post("/api/live/streams", json={"title": "Mux live"}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def live_of(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict:
    return (await client.get(f"/api/live/streams/{stream_id}", headers=admin)).json()


async def send(
    client: httpx.AsyncClient,
    kind: str,
    data: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str | None = None,
    at: datetime | None = None,
) -> httpx.Response:
    body = mux.webhook(kind, data, webhook_id=webhook_id, at=at)
    return await client.post(
        "/webhooks/mux",
        content=body,
        headers={"Mux-Signature": mux.signature(body, secret), "Content-Type": "application/json"},
    )


def mux_ref(stand_in: mux.MuxStandIn, live: dict) -> dict:
    """The stand-in's live stream behind a Vitrine live."""
    return next(s for s in stand_in.live_streams.values() if s["stream_key"] == live["stream_key"])


# --- Mux -----------------------------------------------------------------------------------------


async def test_a_mux_live_has_public_playback_recording_and_a_reconnect_window(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    created = mux_ref(stand_in, live)
    method, path, body = next(r for r in stand_in.requests if r[0] == "POST")
    assert (method, path) == ("POST", "/video/v1/live-streams")
    assert body["playback_policy"] == ["public"]
    assert body["new_asset_settings"]["playback_policy"] == ["public"]
    assert body["reconnect_window"] == 30
    assert body["passthrough"] == live["id"]
    assert live["platform"] == "mux"
    assert live["obs"] == {
        "server": "rtmps://global-live.mux.com:443/app",
        "stream_key": created["stream_key"],
    }
    assert live["playback_url"] == (
        f"https://stream.mux.com/{created['playback_ids'][0]['id']}.m3u8"
    )

    rotated = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["stream_key"] == created["stream_key"] != live["stream_key"]

    assert (
        await client.delete(f"/api/live/streams/{live['id']}", headers=admin)
    ).status_code == 204
    assert created["id"] not in stand_in.live_streams


async def test_mux_failing_answers_502_and_creates_nothing(client, stand_in, on_mux, admin):
    before = len(stand_in.live_streams)
    stand_in.fail_next = 500
    response = await client.post("/api/live/streams", json={"title": "x"}, headers=admin)
    assert response.status_code == 502
    assert "Mux answered 500" in response.json()["detail"]
    assert len(stand_in.live_streams) == before


async def test_mux_webhooks_take_a_live_on_air_off_air_and_into_a_replay(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]

    assert (await send(client, "video.live_stream.connected", {"id": ref})).status_code == 200
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("scheduled", "connected")

    await send(client, "video.live_stream.active", {"id": ref, "status": "active"})
    assert (await live_of(client, admin, live["id"]))["status"] == "live"

    # Disconnected is only a provider state: Mux keeps the reconnect window open.
    await send(client, "video.live_stream.disconnected", {"id": ref})
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("live", "disconnected")
    assert after["end_deadline"] is None

    await send(client, "video.live_stream.idle", {"id": ref, "status": "idle"})
    assert (await live_of(client, admin, live["id"]))["status"] == "ended"

    asset = {
        "id": "asset-1",
        "live_stream_id": ref,
        "status": "ready",
        "playback_ids": [{"id": "replay-playback", "policy": "public"}],
    }
    answer = await send(client, "video.asset.ready", asset)
    assert answer.json() == {"outcome": "applied"}
    after = await live_of(client, admin, live["id"])
    assert after["replay_url"] == "https://stream.mux.com/replay-playback.m3u8"
    assert after["last_webhook"]["type"] == "video.asset.ready"
    assert after["last_webhook"]["outcome"] == "applied"


async def test_ending_a_mux_live_ends_its_recording_and_disconnects_the_encoder(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]
    await send(client, "video.live_stream.active", {"id": ref, "status": "active"})
    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "disconnected")
    # `complete` ends the asset at once; `disable` closes the encoder's connection (Mux would
    # keep it 60 s after `complete`) and refuses it coming back, which would start a new asset.
    puts = [(method, path) for method, path, _ in stand_in.requests if method == "PUT"]
    assert puts[-2:] == [
        ("PUT", f"/video/v1/live-streams/{ref}/complete"),
        ("PUT", f"/video/v1/live-streams/{ref}/disable"),
    ]
    assert stand_in.live_streams[ref]["status"] == "disabled"


async def test_mux_failing_to_stop_the_encoder_does_not_keep_the_live_on_air(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]
    await send(client, "video.live_stream.active", {"id": ref, "status": "active"})
    stand_in.fail_next = 503
    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "stop_failed")


async def test_a_mux_assets_recording_sessions_are_the_replays_takes(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    asset = {
        "id": "asset-takes",
        "live_stream_id": ref,
        "status": "ready",
        "duration": 95.5,
        "playback_ids": [{"id": "replay-takes", "policy": "public"}],
        "recording_times": [
            {"started_at": t0.isoformat().replace("+00:00", "Z"), "duration": 60.0,
             "type": "content"},
            {"started_at": (t0 + timedelta(seconds=90)).isoformat(), "duration": 35.5,
             "type": "content"},
        ],
    }  # fmt: skip
    await send(client, "video.live_stream.active", {"id": ref}, at=t0)
    await send(client, "video.live_stream.idle", {"id": ref}, at=t0 + timedelta(seconds=130))
    assert (await send(client, "video.asset.ready", asset)).json() == {"outcome": "applied"}
    recording = (await live_of(client, admin, live["id"]))["recording"]
    assert recording["duration_s"] == 95.5
    assert [(t["video_end_s"], t["started_at"]) for t in recording["takes"]] == [
        (60.0, t0.isoformat().replace("+00:00", "Z")),
        (95.5, (t0 + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")),
    ]


async def test_badly_signed_mux_webhooks_answer_401_and_change_nothing(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]
    body = mux.webhook("video.live_stream.active", {"id": ref})
    stale = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp())
    forged = [
        {},
        {"Mux-Signature": mux.signature(body, "not-the-secret")},
        {"Mux-Signature": mux.signature(body, WEBHOOK_SECRET, timestamp=stale)},
        {"Mux-Signature": "t=abc,v1=00"},
        {"Mux-Signature": "garbage"},
        {"Mux-Signature": mux.signature(body + b" ", WEBHOOK_SECRET).replace("v1=", "v1=0")},
    ]
    for headers in forged:
        answer = await client.post("/webhooks/mux", content=body, headers=headers)
        assert answer.status_code == 401, headers
    tampered = body.replace(b"active", b"idle")
    headers = {"Mux-Signature": mux.signature(body, WEBHOOK_SECRET)}
    assert (
        await client.post("/webhooks/mux", content=tampered, headers=headers)
    ).status_code == 401
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"], after["last_webhook"]) == (
        "scheduled",
        None,
        None,
    )

    # While a secret is rotated, the previous one and the environment's still verify.
    for secret in (PREVIOUS_SECRET, ENV_SECRET):
        answer = await send(client, "video.live_stream.connected", {"id": ref}, secret=secret)
        assert answer.status_code == 200
    # Signed but not a Mux webhook: refused without a 500.
    junk = b"not json"
    headers = {"Mux-Signature": mux.signature(junk, WEBHOOK_SECRET)}
    assert (await client.post("/webhooks/mux", content=junk, headers=headers)).status_code == 400


async def test_duplicate_late_and_out_of_order_webhooks_never_move_a_live_backwards(
    client, stand_in, on_mux, admin
):
    live = await create_live(client, admin)
    ref = mux_ref(stand_in, live)["id"]
    t0 = datetime.now(UTC)

    first = await send(client, "video.live_stream.active", {"id": ref}, webhook_id="w-1", at=t0)
    assert first.json() == {"outcome": "applied"}
    again = await send(client, "video.live_stream.active", {"id": ref}, webhook_id="w-1", at=t0)
    assert again.json() == {"outcome": "duplicate"}

    # `connected` happened before `active` but arrives after it: the state stays as it was.
    late = await send(
        client, "video.live_stream.connected", {"id": ref}, at=t0 - timedelta(seconds=1)
    )
    assert late.json() == {"outcome": "ignored"}
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("live", "active")
    assert after["last_webhook"]["outcome"] == "ignored"

    await send(client, "video.live_stream.idle", {"id": ref}, at=t0 + timedelta(seconds=2))
    # A redelivered `active` (new id) cannot bring an ended live back on air.
    back = await send(client, "video.live_stream.active", {"id": ref}, at=t0 + timedelta(seconds=3))
    assert back.json() == {"outcome": "ignored"}
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("ended", "idle")

    # Webhooks about live streams Vitrine does not know are acknowledged and ignored.
    other = await send(client, "video.live_stream.active", {"id": "someone-elses"})
    assert other.json() == {"outcome": "ignored"}


# --- nginx-rtmp's reconnect grace ----------------------------------------------------------------


async def nginx_live(client: httpx.AsyncClient, admin: dict, *, grace_s: float) -> dict:
    answer = await client.put(
        "/api/live/settings",
        json={"platform": "nginx_rtmp", "config": {"reconnect_grace_s": grace_s}},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    response = await client.post("/api/live/streams", json={"title": "nginx"}, headers=admin)
    assert response.status_code == 201
    return response.json()


def secret(settings: StreamsSettings) -> dict[str, str]:
    return {"secret": settings.rtmp_callback_secret.get_secret_value()}


async def test_an_encoder_coming_back_within_the_grace_keeps_the_live_on_air(
    client, settings, admin
):
    live = await nginx_live(client, admin, grace_s=0.5)
    query, key = secret(settings), {"name": live["stream_key"]}
    assert (await client.post(f"{NGINX}/on_publish", params=query, data=key)).status_code == 302
    done = {"name": live["playback_id"]}
    await client.post(f"{NGINX}/on_publish_done", params=query, data=done)
    left = await live_of(client, admin, live["id"])
    assert left["status"] == "live" and left["end_deadline"] is not None

    await client.post(f"{NGINX}/on_publish", params=query, data=key)
    await asyncio.sleep(1.0)
    back = await live_of(client, admin, live["id"])
    assert (back["status"], back["provider_state"], back["end_deadline"]) == (
        "live",
        "connected",
        None,
    )

    await client.post(f"{NGINX}/on_publish_done", params=query, data=done)
    ended = await eventually(lambda: _ended(client, admin, live["id"]), timeout=5, interval=0.1)
    assert ended["provider_state"] == "disconnected"


async def test_the_grace_survives_a_restart_of_the_service(client, settings, admin):
    live = await nginx_live(client, admin, grace_s=1)
    query = secret(settings)
    async with running(settings) as first:
        await first.post(f"{NGINX}/on_publish", params=query, data={"name": live["stream_key"]})
        await first.post(
            f"{NGINX}/on_publish_done", params=query, data={"name": live["stream_key"]}
        )
    # The first instance is gone before the deadline; the shared one (a restart) ends the live.
    ended = await eventually(lambda: _ended(client, admin, live["id"]), timeout=5)
    assert ended["end_deadline"] is None


async def test_a_finished_recording_becomes_the_replay(client, settings, admin):
    live = await nginx_live(client, admin, grace_s=0)
    query = secret(settings)
    await client.post(f"{NGINX}/on_publish", params=query, data={"name": live["stream_key"]})
    await client.post(f"{NGINX}/on_publish_done", params=query, data={"name": live["playback_id"]})
    assert (await live_of(client, admin, live["id"]))["status"] == "ended"
    # nginx's own FLV is no replay for a browser: only record-done.sh's MP4 becomes one.
    flv = {"name": live["playback_id"], "path": f"/tmp/rec/{live['playback_id']}.flv"}
    assert (await client.post(f"{NGINX}/on_record_done", params=query, data=flv)).is_success
    assert (await live_of(client, admin, live["id"]))["replay_url"] is None
    recorded = {"name": live["playback_id"], "path": f"/tmp/rec/{live['playback_id']}.mp4"}
    answer = await client.post(f"{NGINX}/on_record_done", params=query, data=recorded)
    assert answer.status_code == 200
    after = await live_of(client, admin, live["id"])
    assert after["replay_url"] == f"{settings.replay_base_url}/{live['playback_id']}.mp4"
    # A path nginx would never write is not turned into a URL.
    odd = {"name": live["playback_id"], "path": "/tmp/rec/../../etc/passwd?x=1"}
    await client.post(f"{NGINX}/on_record_done", params=query, data=odd)
    assert (await live_of(client, admin, live["id"]))["replay_url"] == after["replay_url"]
    unsigned = await client.post(f"{NGINX}/on_record_done", data=recorded)
    assert unsigned.status_code == 401


async def _ended(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict | None:
    live = await live_of(client, admin, stream_id)
    return live if live["status"] == "ended" else None
