"""Restream through the streams service's HTTP API, over real PostgreSQL and NATS: the account's
key entered or fetched with an OAuth token from a local stand-in of Restream's API."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from chassis.secrets import mask
from services.streams.app import create_app, migrate
from services.streams.settings import StreamsSettings
from tests.conftest import auth
from tests.support.restream import RestreamStandIn

ACCESS_TOKEN = "restream-oauth-access-token-0123456789"
REFRESH_TOKEN = "restream-oauth-refresh-token-0123456789"
CLIENT_ID, CLIENT_SECRET = "vitrine-app", "restream-client-secret-0123456789"
ACCOUNT_KEY = "re_1234567_0123456789abcdef0123"
PLAYBACK = "https://player.example/{playback_id}.m3u8"


@pytest.fixture(scope="module")
async def client(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    # A schema of its own: these tests change the platform settings.
    settings = StreamsSettings(**{**env, "db_schema_prefix": "restream_"})
    await migrate(settings)
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://streams"
        ) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def restream() -> Iterator[RestreamStandIn]:
    with RestreamStandIn(
        access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN, client=(CLIENT_ID, CLIENT_SECRET)
    ) as server:
        yield server


async def configure(client: httpx.AsyncClient, admin: dict, **settings: object) -> httpx.Response:
    return await client.put(
        "/api/live/settings", json={"platform": "restream", **settings}, headers=admin
    )


async def create_live(client: httpx.AsyncClient, admin: dict) -> httpx.Response:
    return await client.post("/api/live/streams", json={"title": "Multistream"}, headers=admin)


async def test_lives_share_the_accounts_key_shown_to_the_admin_only(client, admin, tokens):
    configured = await configure(
        client, admin, config={"playback_url": PLAYBACK}, secrets={"stream_key": ACCOUNT_KEY}
    )
    assert configured.status_code == 200, configured.text
    assert ACCOUNT_KEY not in configured.text
    first = (await create_live(client, admin)).json()
    second = (await create_live(client, admin)).json()
    for live in (first, second):
        assert live["platform"] == "restream"
        assert live["obs"] == {"server": "rtmps://live.restream.io/live", "stream_key": ACCOUNT_KEY}
        assert live["playback_url"] == PLAYBACK.format(playback_id=live["playback_id"])
    assert first["playback_url"] != second["playback_url"]

    for headers in ({}, auth(tokens["user"])):
        seen = await client.get(f"/api/live/streams/{first['id']}", headers=headers)
        assert seen.status_code == 200 and ACCOUNT_KEY not in seen.text
    # Restream sends no webhooks: the admin starts and ends the live.
    for step, status in (("start", "live"), ("end", "ended")):
        moved = await client.post(f"/api/live/streams/{first['id']}/{step}", headers=admin)
        assert moved.status_code == 200 and moved.json()["status"] == status


async def test_an_oauth_token_fetches_the_current_key_from_restream(client, admin, restream):
    configured = await configure(
        client,
        admin,
        config={"playback_url": PLAYBACK, "api_url": restream.url},
        secrets={"access_token": ACCESS_TOKEN, "stream_key": ""},
    )
    assert configured.status_code == 200, configured.text
    assert set(configured.json()["secrets"]) == {"access_token"}
    assert ACCESS_TOKEN not in configured.text
    live = (await create_live(client, admin)).json()
    assert live["obs"]["stream_key"] == restream.stream_key

    # The owner regenerates the key in Restream's dashboard; rotating picks it up.
    regenerated = restream.regenerate_key()
    rotated = await client.post(f"/api/live/streams/{live['id']}/rotate-key", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["stream_key"] == regenerated
    assert (await create_live(client, admin)).json()["obs"]["stream_key"] == regenerated


async def test_an_expired_token_is_refreshed_once_and_the_new_pair_kept(client, admin, restream):
    restream.access_token, restream.refresh_token = ACCESS_TOKEN, REFRESH_TOKEN
    configured = await configure(
        client,
        admin,
        config={"playback_url": PLAYBACK, "api_url": restream.url, "client_id": CLIENT_ID},
        secrets={
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert configured.status_code == 200, configured.text
    restream.expire_access_token()
    # Several lives at once after the hour: one refresh (Restream would void a second one's pair).
    created = await asyncio.gather(*(create_live(client, admin) for _ in range(3)))
    assert [answer.status_code for answer in created] == [201, 201, 201], created[0].text
    assert {answer.json()["obs"]["stream_key"] for answer in created} == {restream.stream_key}
    assert restream.refreshes == 1
    stored = (await client.get("/api/live/settings", headers=admin)).json()["secrets"]
    assert stored["access_token"] == mask(restream.access_token)
    assert stored["refresh_token"] == mask(restream.refresh_token)
    assert restream.access_token not in str(stored) and restream.refresh_token not in str(stored)

    # The stored pair is the one in use: later lives need no refresh until it expires again.
    assert (await create_live(client, admin)).status_code == 201
    assert restream.refreshes == 1
    restream.expire_access_token()
    assert (await create_live(client, admin)).status_code == 201
    assert restream.refreshes == 2


async def test_a_refused_refresh_token_answers_502_and_creates_nothing(client, admin, restream):
    restream.refresh_token = "voided-by-a-new-connection"
    restream.expire_access_token()
    configured = await configure(
        client,
        admin,
        config={"playback_url": PLAYBACK, "api_url": restream.url, "client_id": CLIENT_ID},
        secrets={
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert configured.status_code == 200
    refused = await create_live(client, admin)
    assert refused.status_code == 502
    assert "connect the account again" in refused.json()["detail"]
    assert REFRESH_TOKEN not in refused.text and CLIENT_SECRET not in refused.text


async def test_a_refused_token_answers_502_and_creates_nothing(client, admin, restream):
    configured = await configure(
        client,
        admin,
        config={"playback_url": PLAYBACK, "api_url": restream.url},
        secrets={"access_token": "expired-token", "refresh_token": "", "client_secret": ""},
    )
    assert configured.status_code == 200
    before = (await client.get("/api/live/streams?status=scheduled", headers=admin)).json()["items"]
    refused = await create_live(client, admin)
    assert refused.status_code == 502
    assert "renew it in the settings" in refused.json()["detail"]
    assert "refresh_token, client_id and client_secret" in refused.json()["detail"]
    assert "expired-token" not in refused.text
    after = (await client.get("/api/live/streams?status=scheduled", headers=admin)).json()["items"]
    assert len(after) == len(before)


async def test_restream_settings_are_checked(client, admin):
    for settings, detail in (
        ({}, "missing settings: playback_url"),
        ({"config": {"playback_url": "ftp://x/y"}}, "playback_url must be a http or https URL"),
        ({"config": {"playback_url": "https://x/{key}"}}, "{playback_id} placeholder"),
        ({"config": {"playback_url": "https://x/{playback_id.real}"}}, "{playback_id} placeholder"),
        ({"config": {"playback_url": PLAYBACK, "client_id": 7}}, "client_id must be"),
        (
            {"config": {"playback_url": PLAYBACK, "ingest_url": "https://x"}},
            "ingest_url must be a rtmp or rtmps or srt URL",
        ),
        ({"config": {"playback_url": PLAYBACK, "colour": "red"}}, "unknown settings: colour"),
    ):
        refused = await configure(client, admin, **settings)
        assert refused.status_code == 422, settings
        assert detail in refused.json()["detail"]
    # Without a key or a token, a live cannot be made: said plainly, nothing created.
    assert (
        await configure(
            client,
            admin,
            config={"playback_url": PLAYBACK},
            secrets={"stream_key": "", "access_token": "", "refresh_token": ""},
        )
    ).status_code == 200
    refused = await create_live(client, admin)
    assert refused.status_code == 422
    assert "stream_key or access_token" in refused.json()["detail"]


async def test_a_restream_key_opens_nothing_at_nginx(client, admin, env):
    await configure(
        client, admin, config={"playback_url": PLAYBACK}, secrets={"stream_key": ACCOUNT_KEY}
    )
    assert (await create_live(client, admin)).status_code == 201
    secret = StreamsSettings(**env).rtmp_callback_secret.get_secret_value()
    published = await client.post(
        f"/webhooks/nginx-rtmp/on_publish?secret={secret}", data={"name": ACCOUNT_KEY}
    )
    assert published.status_code == 403
