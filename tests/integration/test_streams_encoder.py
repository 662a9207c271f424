"""The encoder from the admin's side, through the streams service's HTTP API over real PostgreSQL
and NATS: ending a live drops its publisher (nginx-rtmp's control module, a stand-in here;
tests/e2e/test_video_nginx_rtmp.py runs the real one), refused publishes leave a trace, each
publish is a take of the recording, and a live is never scheduled in the past."""

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from nats.js import JetStreamContext

from services.streams.app import create_app, migrate
from services.streams.settings import StreamsSettings
from tests.support.nginx_control import ControlStandIn
from tests.support.services import schema_connection, serving
from vitrine.system import free_port

CALLBACK = "/webhooks/nginx-rtmp"


@pytest.fixture(scope="module")
def control() -> Iterator[ControlStandIn]:
    with ControlStandIn(secret=StreamsSettings().rtmp_callback_secret.get_secret_value()) as server:
        yield server


@pytest.fixture(scope="module")
async def settings(env: dict, control: ControlStandIn) -> StreamsSettings:
    # A schema of its own: these tests read the platform's last refused publish.
    settings = StreamsSettings(
        **{**env, "db_schema_prefix": "encoder_"},
        rtmp_reconnect_grace_s=30,
        rtmp_control_url=control.url,
    )
    await migrate(settings)
    return settings


@pytest.fixture(scope="module")
async def client(settings: StreamsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "streams") as client:
        yield client


def secret(settings: StreamsSettings) -> dict[str, str]:
    return {"secret": settings.rtmp_callback_secret.get_secret_value()}


async def create_live(client: httpx.AsyncClient, admin: dict, **fields: Any) -> dict:
    answer = await client.post("/api/live/streams", json={"title": "Encoder", **fields},
                               headers=admin)  # fmt: skip
    assert answer.status_code == 201, answer.text
    return answer.json()


async def live_of(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict:
    return (await client.get(f"/api/live/streams/{stream_id}", headers=admin)).json()


async def nginx(
    client: httpx.AsyncClient, settings: StreamsSettings, callback: str, **form: str
) -> httpx.Response:
    return await client.post(f"{CALLBACK}/{callback}", params=secret(settings), data=form)


async def provider_states(js: JetStreamContext, env: dict, stream_id: str) -> list[dict]:
    sub = await js.subscribe(f"{env['subject_root']}.{stream_id}.stream.provider_state",
                             stream=env["jetstream_stream"], ordered_consumer=True)  # fmt: skip
    found = []
    try:
        while True:
            found.append(orjson.loads((await sub.next_msg(timeout=1)).data)["data"])
    except TimeoutError:
        return found
    finally:
        await sub.unsubscribe()


# --- the encoder follows the admin ---------------------------------------------------------------


async def test_ending_a_live_drops_its_publisher_and_refuses_it_coming_back(
    client, settings, control, js, env, admin
):
    live = await create_live(client, admin)
    publish = {"app": "live", "name": live["stream_key"], "addr": "192.0.2.7"}
    assert (await nginx(client, settings, "on_publish", **publish)).status_code == 302
    control.publishing.add(("live", live["playback_id"]))

    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "disconnected")
    assert control.drops[-1] == {"app": "live", "name": live["playback_id"]}
    # nginx then reports the publish over, and the encoder (OBS reconnects) is turned away.
    assert (await nginx(client, settings, "on_publish_done", **publish)).status_code == 200
    assert (await nginx(client, settings, "on_publish", **publish)).status_code == 403
    after = await live_of(client, admin, live["id"])
    assert after["last_refused_publish"]["reason"] == "ended live"
    assert after["recording"]["takes"][0]["ended_at"] is not None
    states = await provider_states(js, env, live["id"])
    assert [s["state"] for s in states] == ["connected", "disconnected", "refused"]
    assert states[1]["detail"] == "nginx-rtmp dropped the publisher"


async def test_a_failing_drop_does_not_keep_the_live_on_air(client, settings, control, admin):
    live = await create_live(client, admin)
    await nginx(client, settings, "on_publish", app="live", name=live["stream_key"])
    control.fail_with = 500
    try:
        ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    finally:
        control.fail_with = None
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "stop_failed")

    # Nothing listening where the control should be: the same.
    other = await create_live(client, admin)
    await nginx(client, settings, "on_publish", app="live", name=other["stream_key"])
    unreachable = settings.model_copy(
        update={"rtmp_control_url": f"http://127.0.0.1:{free_port()}/control"}
    )
    async with serving(create_app(unreachable), "streams") as elsewhere:
        ended = await elsewhere.post(f"/api/live/streams/{other['id']}/end", headers=admin)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "stop_failed")


async def test_ending_a_live_no_encoder_publishes_to_asks_nginx_nothing(
    client, settings, control, admin
):
    left = await create_live(client, admin)
    await nginx(client, settings, "on_publish", app="live", name=left["stream_key"])
    await nginx(client, settings, "on_publish_done", app="live", name=left["stream_key"])
    never = await create_live(client, admin)
    await client.post(f"/api/live/streams/{never['id']}/start", headers=admin)
    drops = len(control.drops)
    for live, state in ((left, "disconnected"), (never, None)):
        ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
        assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", state)
    # nginx asks the service before any publish: the live's provider state is what goes on.
    assert len(control.drops) == drops


async def test_a_drop_finding_no_publisher_says_the_encoder_is_gone(
    client, settings, control, admin
):
    live = await create_live(client, admin)
    await nginx(client, settings, "on_publish", app="live", name=live["stream_key"])
    # on_publish_done lost on its way: the service thinks the encoder is there, nginx does not.
    ended = await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    assert (ended.json()["status"], ended.json()["provider_state"]) == ("ended", "disconnected")
    assert control.drops[-1] == {"app": "live", "name": live["playback_id"]}


# --- a refused publish leaves a trace ------------------------------------------------------------


async def test_refused_publishes_say_why_on_the_live_and_in_the_settings(
    client, settings, admin, caplog
):
    caplog.set_level(logging.WARNING, logger="services.streams.refusals")
    live = await create_live(client, admin)
    old_key = live["stream_key"]
    rotated = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    new_key = rotated.json()["stream_key"]

    unknown = "live_" + "u" * 39 + "Zz42"
    refused = [
        (unknown, "live", "unknown key"),
        (new_key, "lve", "wrong app"),
        (old_key, "live", "rotated key"),
    ]
    for key, app, reason in refused:
        answer = await nginx(client, settings, "on_publish", app=app, name=key, addr="192.0.2.7")
        assert answer.status_code == 403, reason
        shown = (await client.get("/api/live/settings", headers=admin)).json()
        assert shown["last_refused_publish"]["key"] == f"…{key[-4:]}"
        assert shown["last_refused_publish"]["reason"] == reason
        assert shown["last_refused_publish"]["app"] == app
    assert (
        await nginx(client, settings, "on_publish", app="live", name=new_key)
    ).status_code == 302

    after = await live_of(client, admin, live["id"])
    last = after["last_refused_publish"]
    assert (last["key"], last["reason"]) == (f"…{old_key[-4:]}", "rotated key")
    assert datetime.fromisoformat(last["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    # The encoder with the right key is on air: its state is not the refused one's.
    assert after["provider_state"] == "connected"

    logged = [r.getMessage() for r in caplog.records]
    assert [reason in " ".join(logged) for _, _, reason in refused] == [True] * 3
    for key in (unknown, old_key, new_key):
        assert all(key not in line for line in logged)
        assert key[-4:] in " ".join(logged)
    settings_text = (await client.get("/api/live/settings", headers=admin)).text
    assert unknown not in settings_text and old_key not in settings_text


async def test_a_live_turned_away_before_it_starts_shows_it_in_its_provider_state(
    client, settings, admin
):
    live = await create_live(client, admin)
    await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    await nginx(client, settings, "on_publish", app="live", name=live["stream_key"])
    after = await live_of(client, admin, live["id"])
    assert (after["status"], after["provider_state"]) == ("scheduled", "refused")
    assert after["last_webhook"]["outcome"] == "refused"


# --- takes of the recording ----------------------------------------------------------------------


async def test_each_publish_is_a_take_and_the_files_length_is_kept(client, settings, admin):
    live = await create_live(client, admin)
    key, playback_id = live["stream_key"], live["playback_id"]
    mp4 = f"/tmp/recordings/{playback_id}.mp4"
    await nginx(client, settings, "on_publish", app="live", name=key)
    await nginx(client, settings, "on_publish_done", app="live", name=key)
    await nginx(client, settings, "on_record_done", name=playback_id, path=mp4, duration="4.2")
    await nginx(client, settings, "on_publish", app="live", name=key)  # back within the grace
    # A length ffprobe could not tell never costs the replay.
    odd = await nginx(client, settings, "on_record_done", name=playback_id, path=mp4,
                      duration="N/A")  # fmt: skip
    assert odd.status_code == 200
    await client.post(f"/api/live/streams/{live['id']}/end", headers=admin)
    await nginx(client, settings, "on_publish_done", app="live", name=key)
    await nginx(client, settings, "on_record_done", name=playback_id, path=mp4,
                duration="9.500000")  # fmt: skip

    stream = await live_of(client, admin, live["id"])
    takes = stream["recording"]["takes"]
    assert [t["video_end_s"] for t in takes] == [4.2, 9.5]
    assert takes[0]["started_at"] == stream["started_at"] == stream["recording"]["started_at"]
    assert (
        takes[0]["ended_at"] < takes[1]["started_at"] < stream["ended_at"] <= takes[1]["ended_at"]
    )
    assert stream["recording"]["duration_s"] == 9.5
    replay = (await client.get(f"/api/live/streams/{live['id']}/replay")).json()
    assert replay["recording"] == stream["recording"]
    assert "stream_key" not in replay and key not in str(replay)


# --- a live is scheduled from now on -------------------------------------------------------------


async def test_a_live_cannot_be_scheduled_in_the_past(client, settings, admin):
    now = datetime.now(UTC)
    past = (now - timedelta(hours=2)).isoformat()
    refused = await client.post("/api/live/streams", json={"title": "x", "scheduled_at": past},
                                headers=admin)  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "scheduled_at"]
    # "Now", as a form filled a few seconds ago sends it, is not the past.
    just_now = await create_live(
        client, admin, scheduled_at=(now - timedelta(seconds=20)).isoformat()
    )
    url = f"/api/live/streams/{just_now['id']}"
    assert (await client.put(url, json={"scheduled_at": past}, headers=admin)).status_code == 422
    later = (now + timedelta(days=1)).isoformat()
    assert (await client.put(url, json={"scheduled_at": later}, headers=admin)).status_code == 200
    assert (await client.put(url, json={"scheduled_at": None}, headers=admin)).status_code == 200
    # A live whose time has passed keeps it when a form sends it back as it is.
    async with schema_connection(settings, "streams") as db:
        await db.execute("UPDATE live_streams SET scheduled_at = $1 WHERE id = $2",
                         now - timedelta(hours=2), just_now["id"])  # fmt: skip
    unchanged = {"title": "Renamed", "scheduled_at": past}
    kept = await client.put(url, json=unchanged, headers=admin)
    assert kept.status_code == 200, kept.text
    assert kept.json()["title"] == "Renamed"
