"""The streams service through HTTP, over real PostgreSQL and NATS JetStream."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import nats
import orjson
import pytest
from nats.js import JetStreamContext

from chassis.auth import issue_token
from chassis.secrets import MASK, SecretBox
from chassis.settings import INSECURE_JWT_SECRET
from contracts import Envelope
from services.streams.app import create_app, migrate
from services.streams.settings import StreamsSettings
from tests.conftest import auth, eventually, every_page
from tests.support.nginx_control import ControlStandIn
from tests.support.services import schema_connection, serving

CALLBACK = "/webhooks/nginx-rtmp"


@pytest.fixture(scope="module")
def control() -> Iterator[ControlStandIn]:
    """nginx-rtmp's control module, with no encoder publishing: ending a live drops nothing."""
    with ControlStandIn(secret=StreamsSettings().rtmp_callback_secret.get_secret_value()) as server:
        yield server


@pytest.fixture(scope="module")
async def settings(env: dict, control: ControlStandIn) -> StreamsSettings:
    # A short reconnect grace, checked often, so encoders leaving end their live quickly here.
    settings = StreamsSettings(
        **env,
        rtmp_reconnect_grace_s=0.3,
        grace_check_interval_s=0.1,
        rtmp_control_url=control.url,
    )
    await migrate(settings)
    return settings


@pytest.fixture(scope="module")
async def client(settings: StreamsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "streams") as client:
        yield client


@pytest.fixture(scope="module")
async def db(settings: StreamsSettings) -> AsyncIterator[asyncpg.Connection]:
    async with schema_connection(settings, "streams") as conn:
        yield conn


def secret_query(settings: StreamsSettings) -> dict[str, str]:
    return {"secret": settings.rtmp_callback_secret.get_secret_value()}


async def create_live(client: httpx.AsyncClient, admin: dict, **fields: Any) -> dict:
    response = await client.post(
        "/api/live/streams", json={"title": "Spring collection", **fields}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()


async def events_of(
    js: JetStreamContext, env: dict, stream_id: str, *, count: int
) -> list[tuple[str, dict, bytes]]:
    """(subject, headers, raw data) of the first `count` events of a live, waiting for them,
    then making sure no more than `count` arrive."""
    sub = await js.subscribe(
        f"{env['subject_root']}.{stream_id}.>",
        stream=env["jetstream_stream"],
        ordered_consumer=True,
    )
    received: list[tuple[str, dict, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(received) < count and loop.time() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                msg = await sub.next_msg(timeout=0.5)
                received.append((msg.subject, dict(msg.headers or {}), msg.data))
        with contextlib.suppress(nats.errors.TimeoutError):
            msg = await sub.next_msg(timeout=0.5)
            received.append((msg.subject, dict(msg.headers or {}), msg.data))
    finally:
        await sub.unsubscribe()
    return received


async def ended_or_none(client: httpx.AsyncClient, stream_id: str, admin: dict) -> dict | None:
    live = (await client.get(f"/api/live/streams/{stream_id}", headers=admin)).json()
    return live if live["status"] == "ended" else None


def types_of(events: list[tuple[str, dict, bytes]]) -> list[str]:
    return [orjson.loads(data)["type"] for _, _, data in events]


# --- a live's life -------------------------------------------------------------------------------


async def test_a_live_goes_from_scheduled_to_ended_and_every_step_lands_on_jetstream_in_order(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    created = await create_live(
        client, admin, description="New arrivals", scheduled_at="2030-05-01T18:00:00Z"
    )
    stream_id = created["id"]
    assert created["status"] == "scheduled"
    assert created["platform"] == "nginx_rtmp"
    assert created["stream_key"].startswith("live_")
    assert created["obs"] == {"server": created["ingest_url"], "stream_key": created["stream_key"]}
    assert created["playback_url"].endswith(f"/{created['playback_id']}.m3u8")
    assert created["stream_key"] not in created["playback_url"]

    listed = (await client.get("/api/live/streams")).json()["items"]
    assert stream_id in [s["id"] for s in listed]

    fetched = await client.get(f"/api/live/streams/{stream_id}")
    assert fetched.status_code == 200
    assert fetched.json()["title"] == "Spring collection"

    updated = await client.put(
        f"/api/live/streams/{stream_id}", json={"title": "Summer collection"}, headers=admin
    )
    assert updated.status_code == 200
    assert updated.json()["title"] == "Summer collection"
    assert updated.json()["description"] == "New arrivals"

    started = await client.post(f"/api/live/streams/{stream_id}/start", headers=admin)
    assert started.status_code == 200
    assert started.json()["status"] == "live"
    assert started.json()["started_at"] is not None

    ended = await client.post(f"/api/live/streams/{stream_id}/end", headers=admin)
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    assert ended.json()["ended_at"] is not None

    events = await events_of(js, env, stream_id, count=4)
    assert types_of(events) == [
        "stream.created",
        "stream.updated",
        "stream.started",
        "stream.ended",
    ]
    for subject, headers, data in events:
        envelope = Envelope.model_validate_json(data)
        assert subject == f"{env['subject_root']}.{stream_id}.{envelope.type}"
        assert headers["Nats-Msg-Id"] == str(envelope.id)
        assert str(envelope.stream_id) == stream_id
        assert envelope.producer == "streams"
        assert envelope.version == 1
        assert envelope.occurred_at.tzinfo is not None
        envelope.payload()  # validates against the registered contract
    assert orjson.loads(events[1][2])["data"]["changed"] == ["title"]
    assert [orjson.loads(e[2])["data"]["stream"]["status"] for e in events] == [
        "scheduled",
        "scheduled",
        "live",
        "ended",
    ]


async def test_updating_a_field_to_its_current_value_records_no_event(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    live = await create_live(client, admin)
    response = await client.put(
        f"/api/live/streams/{live['id']}", json={"title": live["title"]}, headers=admin
    )
    assert response.status_code == 200
    cleared = await client.put(
        f"/api/live/streams/{live['id']}", json={"description": "  "}, headers=admin
    )
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None
    assert types_of(await events_of(js, env, live["id"], count=1)) == ["stream.created"]


async def test_invalid_transitions_answer_409_and_change_nothing(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id = (await create_live(client, admin))["id"]
    url = f"/api/live/streams/{stream_id}"

    assert (await client.post(f"{url}/end", headers=admin)).status_code == 409
    assert (await client.post(f"{url}/start", headers=admin)).status_code == 200
    again = await client.post(f"{url}/start", headers=admin)
    assert again.status_code == 409
    assert again.json() == {"detail": "cannot start a live that is live"}
    assert (await client.delete(url, headers=admin)).status_code == 409
    assert (await client.get(url)).json()["status"] == "live"
    assert (await client.post(f"{url}/end", headers=admin)).status_code == 200
    assert (await client.post(f"{url}/start", headers=admin)).status_code == 409
    assert (await client.post(f"{url}/end", headers=admin)).status_code == 409
    assert (await client.post(f"{url}/rotate-key", headers=admin)).status_code == 409

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404

    events = await events_of(js, env, stream_id, count=4)
    assert types_of(events) == [
        "stream.created",
        "stream.started",
        "stream.ended",
        "stream.deleted",
    ]


async def test_two_concurrent_starts_give_exactly_one_200_and_one_409(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id = (await create_live(client, admin))["id"]
    responses = await asyncio.gather(
        *(client.post(f"/api/live/streams/{stream_id}/start", headers=admin) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    events = await events_of(js, env, stream_id, count=2)
    assert types_of(events) == ["stream.created", "stream.started"]


async def test_a_new_key_replaces_the_old_one(
    client: httpx.AsyncClient, settings: StreamsSettings, admin: dict
) -> None:
    live = await create_live(client, admin)
    rotated = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    assert rotated.status_code == 200
    new_key = rotated.json()["stream_key"]
    assert new_key != live["stream_key"]
    assert rotated.json()["playback_url"] == live["playback_url"]
    query = secret_query(settings)
    old = await client.post(
        f"{CALLBACK}/on_publish", params=query, data={"name": live["stream_key"]}
    )
    assert old.status_code == 403
    new = await client.post(f"{CALLBACK}/on_publish", params=query, data={"name": new_key})
    assert new.status_code == 302


async def test_viewers_see_scheduled_and_live_ones_and_admins_see_all(
    client: httpx.AsyncClient, admin: dict
) -> None:
    ended = await create_live(client, admin, title="Finished")
    await client.post(f"/api/live/streams/{ended['id']}/start", headers=admin)
    await client.post(f"/api/live/streams/{ended['id']}/end", headers=admin)
    on_air = await create_live(client, admin, title="On air")
    await client.post(f"/api/live/streams/{on_air['id']}/start", headers=admin)

    public = (await client.get("/api/live/streams", params={"limit": 100})).json()["items"]
    assert {s["status"] for s in public} <= {"scheduled", "live"}
    assert ended["id"] not in [s["id"] for s in public]
    assert public[0]["status"] == "live"  # lives on air come first
    # Ended lives are listed to viewers only when they can be watched again (a replay).
    replays = (await client.get("/api/live/streams", params={"status": "ended"})).json()["items"]
    assert ended["id"] not in [s["id"] for s in replays]
    assert all(s["status"] == "ended" and s["replay_url"] for s in replays)
    assert (await client.get(f"/api/live/streams/{ended['id']}")).status_code == 404

    only_ended = await client.get("/api/live/streams", params={"status": "ended"}, headers=admin)
    assert ended["id"] in [s["id"] for s in only_ended.json()["items"]]
    assert {s["status"] for s in only_ended.json()["items"]} == {"ended"}
    assert (await client.get(f"/api/live/streams/{ended['id']}", headers=admin)).status_code == 200

    # The old paging, kept for one release: a bare list.
    first = await client.get("/api/live/streams", params={"limit": 2, "offset": 0})
    second = (await client.get("/api/live/streams", params={"limit": 2, "offset": 2})).json()
    assert first.headers["Deprecation"] == "true"
    assert len(first.json()) == 2
    assert not {s["id"] for s in first.json()} & {s["id"] for s in second}


async def walk(client: httpx.AsyncClient, headers: dict, **params) -> list[dict]:
    return await every_page(client, "/api/live/streams", headers=headers, **params)


async def test_pages_of_lives_follow_a_cursor_with_none_lost_or_repeated(
    client: httpx.AsyncClient, admin: dict
) -> None:
    made = [(await create_live(client, admin, title=f"Page {i}"))["id"] for i in range(3)]
    for live in made[:2]:  # one on air, one ended
        await client.post(f"/api/live/streams/{live}/start", headers=admin)
    await client.post(f"/api/live/streams/{made[1]}/end", headers=admin)
    await create_live(client, admin, title="Dated", scheduled_at="2031-01-01T10:00:00Z")

    whole = [s["id"] for s in await walk(client, admin, limit=7)]
    assert [s["id"] for s in await walk(client, admin, limit=2)] == whole
    assert len(whole) == len(set(whole)) and set(made) <= set(whole)
    ended = await walk(client, admin, limit=1, status="ended")
    assert made[1] in [s["id"] for s in ended] and {s["status"] for s in ended} == {"ended"}

    # A live created between two pages shifts nothing: the second page starts after the first.
    page = (await client.get("/api/live/streams", params={"limit": 2}, headers=admin)).json()
    await create_live(client, admin, title="Meanwhile")
    rest = await walk(client, admin, limit=2, cursor=page["next_cursor"])
    ids = [s["id"] for s in page["items"] + rest]
    assert len(ids) == len(set(ids))
    assert set(ids) >= set(whole)

    for bad in ("nope", "WzEsMl0", "W10", "WzEsMS41LDIuNSwibm90LWEtdXVpZCJd"):
        refused = await client.get("/api/live/streams", params={"cursor": bad}, headers=admin)
        assert refused.status_code == 400 and refused.json() == {"detail": "invalid cursor"}


# --- who may do what -----------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("POST", "/api/live/streams", {"title": "x"}, 201),
    ("PUT", "/api/live/streams/{id}", {"title": "y"}, 200),
    ("DELETE", "/api/live/streams/{id}", None, 204),
    ("POST", "/api/live/streams/{id}/start", None, 200),
    ("POST", "/api/live/streams/{id}/end", None, 409),  # allowed, but a scheduled live cannot end
    ("POST", "/api/live/streams/{id}/rotate-key", None, 200),
    ("GET", "/api/live/settings", None, 200),
    ("PUT", "/api/live/settings", {"platform": "nginx_rtmp"}, 200),
]
PUBLIC_ROUTES = [("GET", "/api/live/streams"), ("GET", "/api/live/streams/{id}")]


@pytest.mark.parametrize(("method", "path", "body", "admin_status"), ADMIN_ROUTES)
async def test_admin_routes_refuse_anonymous_callers_and_non_admins(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    admin: dict,
    method: str,
    path: str,
    body: dict | None,
    admin_status: int,
) -> None:
    live = await create_live(client, admin)
    url = path.format(id=live["id"])
    callers = {
        "anonymous": ({}, 401),
        "user": (auth(tokens["user"]), 403),
        "moderator": (auth(tokens["moderator"]), 403),
        "admin": (admin, admin_status),
    }
    for caller, (headers, expected) in callers.items():
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == expected, (caller, response.text)
        if expected in (401, 403):
            assert "detail" in response.json()
    after = await client.get(f"/api/live/streams/{live['id']}", headers=admin)
    if method == "DELETE":
        assert after.status_code == 404


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES)
async def test_anyone_may_read_scheduled_and_live_ones(
    client: httpx.AsyncClient, tokens: dict[str, str], admin: dict, method: str, path: str
) -> None:
    live = await create_live(client, admin)
    for headers in ({}, auth(tokens["user"]), auth(tokens["moderator"]), admin):
        response = await client.request(method, path.format(id=live["id"]), headers=headers)
        assert response.status_code == 200


async def test_the_stream_key_reaches_admins_only_never_viewers_nor_the_bus(
    client: httpx.AsyncClient,
    js: JetStreamContext,
    env: dict,
    settings: StreamsSettings,
    tokens: dict[str, str],
    admin: dict,
) -> None:
    live = await create_live(client, admin)
    key, stream_id = live["stream_key"], live["id"]
    await client.put(f"/api/live/streams/{stream_id}", json={"title": "Renamed"}, headers=admin)
    await client.post(f"{CALLBACK}/on_publish", params=secret_query(settings), data={"name": key})
    admin_view = await client.get(f"/api/live/streams/{stream_id}", headers=admin)
    assert admin_view.json()["stream_key"] == key
    admin_list = await client.get("/api/live/streams", params={"limit": 100}, headers=admin)
    assert key in str(admin_list.json()["items"])
    assert key in admin_list.text

    for headers in ({}, auth(tokens["user"]), auth(tokens["moderator"])):
        for response in (
            await client.get(f"/api/live/streams/{stream_id}", headers=headers),
            await client.get("/api/live/streams", params={"limit": 100}, headers=headers),
            await client.post(f"/api/live/streams/{stream_id}/rotate-key", headers=headers),
        ):
            assert key not in response.text
            assert "stream_key" not in response.text
            assert "ingest_url" not in response.text
    events = await events_of(js, env, stream_id, count=4)
    assert types_of(events) == [
        "stream.created",
        "stream.updated",
        "stream.provider_state",
        "stream.started",
    ]
    for _, headers, data in events:
        assert key.encode() not in data
        assert b"stream_key_hash" not in data and b"provider_ref" not in data
        assert key not in str(headers)


# --- bad input -----------------------------------------------------------------------------------


async def test_bad_input_is_refused_with_4xx_and_changes_nothing(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    live = await create_live(client, admin)
    url = f"/api/live/streams/{live['id']}"
    before = (await client.get("/api/live/streams", params={"limit": 100}, headers=admin)).json()

    bad_creates = [
        {"title": 123},
        {"title": None},
        {},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "ok", "description": "d" * 5001},
        {"title": "ok", "scheduled_at": "tomorrow"},
        {"title": "ok", "scheduled_at": "2030-05-01T18:00:00"},  # no time zone
        {"title": "ok", "status": "live"},
        {"title": "ok", "stream_key": "live_mine"},
        ["title"],
    ]
    for body in bad_creates:
        response = await client.post("/api/live/streams", json=body, headers=admin)
        assert response.status_code == 422, body
        assert "detail" in response.json()
    not_json = await client.post(
        "/api/live/streams",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    huge = await client.post(
        "/api/live/streams",
        content=b'{"title": "' + b"x" * 5_000_000 + b'"}',
        headers={**admin, "content-type": "application/json"},
    )
    assert huge.status_code == 413

    for body in ({}, {"title": None}, {"title": ""}, {"status": "ended"}, {"title": 5}):
        assert (await client.put(url, json=body, headers=admin)).status_code == 422, body

    assert (await client.get("/api/live/streams/not-a-uuid")).status_code == 422
    assert (await client.post("/api/live/streams/123/start", headers=admin)).status_code == 422
    unknown = uuid4()
    assert (await client.get(f"/api/live/streams/{unknown}", headers=admin)).status_code == 404
    for method in ("PUT", "DELETE"):
        response = await client.request(
            method, f"/api/live/streams/{unknown}", json={"title": "x"}, headers=admin
        )
        assert response.status_code == 404
    for action in ("start", "end", "rotate-key"):
        response = await client.post(f"/api/live/streams/{unknown}/{action}", headers=admin)
        assert response.status_code == 404
    for query in ({"status": "paused"}, {"limit": 0}, {"limit": 1000}, {"offset": -1}):
        assert (await client.get("/api/live/streams", params=query)).status_code == 422

    after = (await client.get("/api/live/streams", params={"limit": 100}, headers=admin)).json()
    assert after == before
    assert types_of(await events_of(js, env, live["id"], count=1)) == ["stream.created"]


async def test_malformed_expired_or_foreign_tokens_answer_401(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    expired = issue_token(
        secret=INSECURE_JWT_SECRET, user_id="admin-1", role="admin", ttl=timedelta(seconds=-5)
    )
    foreign = issue_token(secret="another-secret-" * 3, user_id="admin-1", role="admin")
    bad_headers = [
        auth("not.a.jwt"),
        auth(expired),
        auth(foreign),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer "},
    ]
    for headers in bad_headers:
        for method, url in (("GET", "/api/live/streams"), ("POST", "/api/live/streams")):
            response = await client.request(method, url, json={"title": "x"}, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert "detail" in response.json()


# --- settings ------------------------------------------------------------------------------------


async def test_provider_secrets_are_sealed_at_rest_and_masked_in_every_answer(
    client: httpx.AsyncClient, db: asyncpg.Connection, settings: StreamsSettings, admin: dict
) -> None:
    plaintext = "tok_" + uuid4().hex
    config = {
        "ingest_url": "rtmp://video.example.com/app",
        "playback_url_template": "https://cdn.example.com/{playback_id}/index.m3u8",
    }
    try:
        put = await client.put(
            "/api/live/settings",
            json={"platform": "custom_rtmp", "config": config, "secrets": {"api_token": plaintext}},
            headers=admin,
        )
        assert put.status_code == 200, put.text
        assert plaintext not in put.text
        assert put.json()["secrets"] == {"api_token": MASK + plaintext[-4:]}
        assert put.json()["config"] == config

        got = await client.get("/api/live/settings", headers=admin)
        assert plaintext not in got.text
        assert got.json()["platform"] == "custom_rtmp"

        sealed = orjson.loads(await db.fetchval("SELECT secrets_sealed FROM live_stream_settings"))[
            "api_token"
        ]
        assert plaintext not in sealed
        assert SecretBox(settings.vitrine_secret_key.get_secret_value()).open(sealed) == plaintext

        # Leaving the secret out, or sending the mask back, keeps it.
        for secrets in ({}, {"api_token": got.json()["secrets"]["api_token"]}):
            kept = await client.put(
                "/api/live/settings",
                json={"platform": "custom_rtmp", "config": config, "secrets": secrets},
                headers=admin,
            )
            assert kept.json()["secrets"] == {"api_token": MASK + plaintext[-4:]}
        stored = orjson.loads(await db.fetchval("SELECT secrets_sealed FROM live_stream_settings"))
        assert (
            SecretBox(settings.vitrine_secret_key.get_secret_value()).open(stored["api_token"])
            == plaintext
        )

        live = await create_live(client, admin)
        assert live["platform"] == "custom_rtmp"
        assert live["ingest_url"] == "rtmp://video.example.com/app"
        assert live["playback_url"] == f"https://cdn.example.com/{live['playback_id']}/index.m3u8"
        # nginx callbacks open no live of another platform.
        response = await client.post(
            f"{CALLBACK}/on_publish",
            params=secret_query(settings),
            data={"name": live["stream_key"]},
        )
        assert response.status_code == 403

        removed = await client.put(
            "/api/live/settings",
            json={"platform": "custom_rtmp", "config": config, "secrets": {"api_token": None}},
            headers=admin,
        )
        assert removed.json()["secrets"] == {}
    finally:
        reset = await client.put(
            "/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin
        )
        assert reset.status_code == 200


async def test_unknown_platforms_and_bad_settings_are_refused(
    client: httpx.AsyncClient, admin: dict
) -> None:
    before = (await client.get("/api/live/settings", headers=admin)).json()
    bad = [
        {"platform": "vimeo"},
        {"platform": "custom_rtmp"},
        {"platform": "custom_rtmp", "config": {"ingest_url": "rtmp://a/b"}},
        {
            "platform": "custom_rtmp",
            "config": {"ingest_url": "rtmp://a/b", "playback_url_template": "https://a/x.m3u8"},
        },
        {
            "platform": "custom_rtmp",
            "config": {
                "ingest_url": "http://a/b",
                "playback_url_template": "https://a/{playback_id}",
            },
        },
        {
            "platform": "custom_rtmp",
            "config": {"ingest_url": "rtmp://a/b", "playback_url_template": "https://a/{other}"},
        },
        {"platform": "nginx_rtmp", "config": {"unknown": "x"}},
        {"platform": "nginx_rtmp", "config": {"hls_base_url": "ftp://x"}},
        {"platform": "nginx_rtmp", "extra": True},
        {"platform": "nginx_rtmp", "secrets": {"Bad Name": "x"}},
        {"platform": "nginx_rtmp", "config": {"reconnect_grace_s": -1}},
        {"platform": "nginx_rtmp", "config": {"reconnect_grace_s": "ten"}},
        {"platform": "mux", "config": {"reconnect_window": 0}},
        {"platform": "mux", "config": {"latency_mode": "fastest"}},
        {"platform": "mux", "config": {"api_url": "ftp://x"}},
        {"platform": "restream"},
        {
            "platform": "custom_rtmp",
            "config": {
                "ingest_url": "rtmp://a/b",
                "playback_url_template": "https://a/{playback_id.real}",
            },
        },
    ]
    for body in bad:
        response = await client.put("/api/live/settings", json=body, headers=admin)
        assert response.status_code == 422, body
    assert (await client.get("/api/live/settings", headers=admin)).json() == before


# --- nginx-rtmp callbacks ------------------------------------------------------------------------


async def test_nginx_publishing_with_the_key_puts_the_live_on_air_under_its_playback_id(
    client: httpx.AsyncClient,
    js: JetStreamContext,
    env: dict,
    settings: StreamsSettings,
    admin: dict,
) -> None:
    live = await create_live(client, admin)
    query = secret_query(settings)
    form = {"call": "publish", "app": "live", "name": live["stream_key"], "addr": "127.0.0.1"}

    published = await client.post(f"{CALLBACK}/on_publish", params=query, data=form)
    assert published.status_code == 302
    assert published.headers["location"] == live["playback_id"]
    assert (await client.get(f"/api/live/streams/{live['id']}")).json()["status"] == "live"

    # The encoder reconnecting is welcome while the live is on air.
    again = await client.post(f"{CALLBACK}/on_publish", params=query, data=form)
    assert again.status_code == 302

    # nginx reports the end under the name it renamed the stream to.
    done = await client.post(
        f"{CALLBACK}/on_publish_done", params=query, data={"name": live["playback_id"]}
    )
    assert done.status_code == 200
    # The live ends once the encoder's reconnect grace has run out.
    after = await eventually(lambda: ended_or_none(client, live["id"], admin), timeout=5)
    assert after["provider_state"] == "disconnected"
    assert after["end_deadline"] is None

    # Late or repeated callbacks change nothing; an ended live refuses its encoder, and says so.
    repeated = await client.post(f"{CALLBACK}/on_publish_done", params=query, data=form)
    assert repeated.status_code == 200
    assert (await client.post(f"{CALLBACK}/on_publish", params=query, data=form)).status_code == 403

    events = await events_of(js, env, live["id"], count=6)
    assert types_of(events) == [
        "stream.created",
        "stream.provider_state",
        "stream.started",
        "stream.provider_state",
        "stream.ended",
        "stream.provider_state",
    ]
    states = [orjson.loads(e[2])["data"].get("state") for e in events]
    assert (states[1], states[3], states[5]) == ("connected", "disconnected", "refused")


async def test_nginx_publishing_with_a_wrong_key_is_refused(
    client: httpx.AsyncClient, settings: StreamsSettings
) -> None:
    for name in ("live_" + "x" * 43, "nothing", "' OR 1=1 --"):
        response = await client.post(
            f"{CALLBACK}/on_publish", params=secret_query(settings), data={"name": name}
        )
        assert response.status_code == 403
    missing = await client.post(f"{CALLBACK}/on_publish", params=secret_query(settings), data={})
    assert missing.status_code == 422


async def test_nginx_callbacks_without_the_right_secret_answer_401(
    client: httpx.AsyncClient, admin: dict
) -> None:
    live = await create_live(client, admin)
    for action in ("on_publish", "on_publish_done"):
        for params in ({}, {"secret": "wrong"}, {"secret": ""}):
            response = await client.post(
                f"{CALLBACK}/{action}", params=params, data={"name": live["stream_key"]}
            )
            assert response.status_code == 401
        # The secret is checked before anything else is looked at.
        assert (await client.post(f"{CALLBACK}/{action}", data={})).status_code == 401
    after = await client.get(f"/api/live/streams/{live['id']}", headers=admin)
    assert after.json()["status"] == "scheduled"
    assert after.json()["provider_state"] is None


async def test_admin_start_then_encoder_connecting_keeps_the_live_on_air(
    client: httpx.AsyncClient, settings: StreamsSettings, admin: dict
) -> None:
    live = await create_live(client, admin)
    await client.post(f"/api/live/streams/{live['id']}/start", headers=admin)
    response = await client.post(
        f"{CALLBACK}/on_publish", params=secret_query(settings), data={"name": live["stream_key"]}
    )
    assert response.status_code == 302
    after = await client.get(f"/api/live/streams/{live['id']}", headers=admin)
    assert after.json()["status"] == "live"
    assert after.json()["provider_state"] == "connected"


# --- operations ----------------------------------------------------------------------------------


async def test_the_service_is_ready_when_database_and_nats_answer(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await eventually(lambda: client.get("/readyz"))
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "nats": True}
