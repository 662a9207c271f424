"""Chat moderation through HTTP, over real PostgreSQL, NATS JetStream and Redis: delete, pin,
bans and timeouts, chat on/off, slow mode, blocked words, and who may do what."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from nats.js import JetStreamContext

from tests.conftest import auth, eventually
from tests.integration.test_chat_service import (
    chat_events,
    events_of,
    open_live,
    post,
    running_chat,
    viewer,
)


@pytest.fixture(scope="module")
async def client(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    async with running_chat(env) as client:
        yield client


@pytest.fixture
async def live(client: httpx.AsyncClient, js: JetStreamContext, env: dict) -> str:
    return await open_live(client, js, env)


@pytest.fixture
def moderator(tokens: dict[str, str]) -> dict[str, str]:
    return auth(tokens["moderator"])


async def posted(client: httpx.AsyncClient, live: str, text: str) -> dict:
    _, headers = viewer()
    response = await post(client, headers, live, text)
    assert response.status_code == 201, response.text
    return response.json()


async def history(client: httpx.AsyncClient, live: str) -> list[dict]:
    response = await client.get("/api/live/chat", params={"stream_id": live})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def set_options(
    client: httpx.AsyncClient, live: str, headers: dict[str, str], **options: object
) -> dict:
    response = await client.put(f"/api/live/streams/{live}/chat", json=options, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- delete and pin ------------------------------------------------------------------------------


async def test_a_deleted_message_leaves_the_history_and_viewers_are_told(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    keep = await posted(client, live, "keep me")
    gone = await posted(client, live, "delete me")
    deleted = await client.delete(f"/api/live/chat/{gone['id']}", headers=moderator)
    assert deleted.status_code == 204
    assert [m["id"] for m in await history(client, live)] == [keep["id"]]
    again = await client.delete(f"/api/live/chat/{gone['id']}", headers=moderator)
    assert again.status_code == 404
    events = chat_events(await events_of(js, env, live, count=3, kind="chat.>"))
    assert events[-1] == ("chat.deleted", {"message_id": gone["id"]})


async def test_pinning_a_message_unpins_the_previous_one_first(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    first = await posted(client, live, "first")
    second = await posted(client, live, "second")
    pinned = await client.post(f"/api/live/chat/{first['id']}/pin", headers=moderator)
    assert pinned.status_code == 200
    assert pinned.json()["is_pinned"] is True
    repinned = await client.post(f"/api/live/chat/{first['id']}/pin", headers=moderator)
    assert repinned.status_code == 200  # already pinned: nothing happens
    assert (await client.post(f"/api/live/chat/{second['id']}/pin", headers=moderator)).is_success

    listed = (await client.get("/api/live/chat/pinned", params={"stream_id": live})).json()
    assert [m["id"] for m in listed] == [second["id"]]
    flags = {m["id"]: m["is_pinned"] for m in await history(client, live)}
    assert flags == {first["id"]: False, second["id"]: True}

    unpinned = await client.delete(f"/api/live/chat/{second['id']}/pin", headers=moderator)
    assert unpinned.status_code == 204
    assert (await client.get("/api/live/chat/pinned", params={"stream_id": live})).json() == []

    events = chat_events(await events_of(js, env, live, count=6, kind="chat.>"))
    assert [(kind, data.get("message_id") or data["message"]["id"]) for kind, data in events] == [
        ("chat.posted", first["id"]),
        ("chat.posted", second["id"]),
        ("chat.pinned", first["id"]),
        ("chat.unpinned", first["id"]),
        ("chat.pinned", second["id"]),
        ("chat.unpinned", second["id"]),
    ]
    assert events[2][1]["message"]["is_pinned"] is True


async def test_deleting_the_pinned_message_unpins_it(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    message = await posted(client, live, "pinned then deleted")
    assert (await client.post(f"/api/live/chat/{message['id']}/pin", headers=moderator)).is_success
    assert (await client.delete(f"/api/live/chat/{message['id']}", headers=moderator)).is_success
    assert (await client.get("/api/live/chat/pinned", params={"stream_id": live})).json() == []
    kinds = [
        kind for kind, _ in chat_events(await events_of(js, env, live, count=4, kind="chat.>"))
    ]
    assert kinds == ["chat.posted", "chat.pinned", "chat.unpinned", "chat.deleted"]


async def test_concurrent_pins_leave_exactly_one_pinned_message(
    client: httpx.AsyncClient, live: str, moderator: dict
) -> None:
    messages = [await posted(client, live, f"candidate {i}") for i in range(6)]
    responses = await asyncio.gather(
        *(client.post(f"/api/live/chat/{m['id']}/pin", headers=moderator) for m in messages)
    )
    assert all(r.status_code == 200 for r in responses)
    assert len((await client.get("/api/live/chat/pinned", params={"stream_id": live})).json()) == 1


# --- bans and timeouts ---------------------------------------------------------------------------


async def test_a_banned_user_cannot_post_until_the_ban_is_lifted(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    user_id, headers = viewer()
    assert (await post(client, headers, live, "hello")).status_code == 201
    banned = await client.post(
        "/api/live/chat/bans",
        json={"user_id": user_id, "stream_id": live, "scope": "live", "reason": "insults"},
        headers=moderator,
    )
    assert banned.status_code == 201, banned.text
    ban = banned.json()
    assert ban["until"] is None and ban["scope"] == "live" and ban["created_by"] == "mod-1"

    refused = await post(client, headers, live, "let me speak")
    assert refused.status_code == 403
    assert "banned" in refused.json()["detail"]
    listed = await client.get("/api/live/chat/bans", params={"stream_id": live}, headers=moderator)
    assert ban["id"] in [b["id"] for b in listed.json()]

    events = chat_events(await events_of(js, env, live, count=2, kind="chat.>"))
    assert events[-1] == (
        "chat.user_banned",
        {"user_id": user_id, "scope": "live", "until": None, "reason": None},
    )

    lifted = await client.delete(f"/api/live/chat/bans/{ban['id']}", headers=moderator)
    assert lifted.status_code == 204
    assert (
        await client.delete(f"/api/live/chat/bans/{ban['id']}", headers=moderator)
    ).status_code == 404
    assert (await post(client, headers, live, "thank you")).status_code == 201


async def test_a_live_ban_keeps_other_lives_open_and_a_shop_ban_closes_them_all(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    other = await open_live(client, js, env)
    user_id, headers = viewer()
    await client.post(
        "/api/live/chat/bans",
        json={"user_id": user_id, "stream_id": live, "scope": "live"},
        headers=moderator,
    )
    assert (await post(client, headers, live, "here?")).status_code == 403
    assert (await post(client, headers, other, "there?")).status_code == 201

    shop = await client.post(
        "/api/live/chat/bans", json={"user_id": user_id, "scope": "shop"}, headers=moderator
    )
    assert shop.status_code == 201
    refused = await post(client, headers, other, "anywhere?")
    assert refused.status_code == 403
    assert "shop" in refused.json()["detail"]


async def test_a_timed_out_user_is_told_until_when_and_posts_again_once_it_expires(
    client: httpx.AsyncClient, live: str, moderator: dict
) -> None:
    user_id, headers = viewer()
    timeout = await client.post(
        "/api/live/chat/bans",
        json={"user_id": user_id, "stream_id": live, "scope": "live", "duration_s": 1},
        headers=moderator,
    )
    assert timeout.status_code == 201
    until = timeout.json()["until"]
    assert until is not None
    refused = await post(client, headers, live, "now?")
    assert refused.status_code == 403
    assert "until" in refused.json()["detail"]
    assert until[:19] in refused.json()["detail"]

    async def may_post() -> bool:
        return (await post(client, headers, live, "back again")).status_code == 201

    await eventually(may_post, timeout=5)


async def test_a_ban_needs_a_known_live_and_valid_fields(
    client: httpx.AsyncClient, moderator: dict
) -> None:
    unknown = await client.post(
        "/api/live/chat/bans",
        json={"user_id": "someone", "stream_id": str(uuid4()), "scope": "live"},
        headers=moderator,
    )
    assert unknown.status_code == 404
    for body in (
        {"user_id": "someone", "scope": "live"},
        {"user_id": "", "scope": "shop"},
        {"user_id": "someone", "scope": "shop", "duration_s": 0},
        {"user_id": "someone", "scope": "galaxy"},
    ):
        response = await client.post("/api/live/chat/bans", json=body, headers=moderator)
        assert response.status_code == 422, body


# --- options: chat on/off, slow mode -------------------------------------------------------------


async def test_a_closed_chat_refuses_posts_with_a_clear_message(
    client: httpx.AsyncClient, live: str, admin: dict
) -> None:
    _, headers = viewer()
    assert await set_options(client, live, admin, enabled=False) == {
        "enabled": False,
        "slow_mode_s": 0,
        "blocked_words": [],
        "blocked_words_action": "reject",
    }
    public = (await client.get(f"/api/live/streams/{live}/chat")).json()
    assert public == {"enabled": False, "slow_mode_s": 0}
    refused = await post(client, headers, live, "anyone?")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "the chat of this live is closed"
    await set_options(client, live, admin, enabled=True)
    assert (await post(client, headers, live, "open again")).status_code == 201


async def test_slow_mode_allows_one_message_per_user_every_n_seconds(
    client: httpx.AsyncClient, live: str, moderator: dict
) -> None:
    await set_options(client, live, moderator, slow_mode_s=30)
    _, headers = viewer()
    _, neighbour = viewer()
    assert (await post(client, headers, live, "one")).status_code == 201
    refused = await post(client, headers, live, "two")
    assert refused.status_code == 429
    assert 29 <= int(refused.headers["Retry-After"]) <= 30
    assert "slow mode" in refused.json()["detail"]
    assert (await post(client, neighbour, live, "me too")).status_code == 201
    assert (await post(client, moderator, live, "host here")).status_code == 201
    assert (await post(client, moderator, live, "and again")).status_code == 201

    await set_options(client, live, moderator, slow_mode_s=0)  # lifted during the live
    assert (await post(client, headers, live, "two")).status_code == 201


async def test_options_are_validated_and_need_a_known_live(
    client: httpx.AsyncClient, live: str, moderator: dict
) -> None:
    url = f"/api/live/streams/{live}/chat"
    for body in ({}, {"slow_mode_s": 3601}, {"slow_mode_s": -1}, {"enabled": None}, {"x": 1}):
        assert (await client.put(url, json=body, headers=moderator)).status_code == 422, body
    missing = f"/api/live/streams/{uuid4()}/chat"
    assert (await client.get(missing)).status_code == 404
    assert (
        await client.put(missing, json={"enabled": False}, headers=moderator)
    ).status_code == 404


# --- blocked words -------------------------------------------------------------------------------


async def test_blocked_words_reject_a_message_and_only_moderators_see_the_list(
    client: httpx.AsyncClient, live: str, moderator: dict
) -> None:
    options = await set_options(client, live, moderator, blocked_words=["Spam", "free money"])
    assert options["blocked_words"] == ["spam", "free money"]
    assert "blocked_words" not in (await client.get(f"/api/live/streams/{live}/chat")).json()
    _, headers = viewer()
    refused = await post(client, headers, live, "Get FREE money here")
    assert refused.status_code == 422
    assert (
        refused.json()["detail"] == "your message contains a word that is not allowed in this chat"
    )
    assert (await post(client, headers, live, "antispam filters work")).status_code == 201


async def test_held_messages_wait_for_a_moderator_and_approval_publishes_them(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    await set_options(client, live, moderator, blocked_words=["spam"], blocked_words_action="hold")
    _, headers = viewer()
    held = await post(client, headers, live, "is this spam?")
    assert held.status_code == 202
    held_id = held.json()["id"]
    later = await posted(client, live, "a later message")

    assert [m["id"] for m in await history(client, live)] == [later["id"]]
    users_view = await client.get(
        "/api/live/chat", params={"stream_id": live, "include_held": "true"}, headers=headers
    )
    assert users_view.status_code == 403
    with_held = await client.get(
        "/api/live/chat", params={"stream_id": live, "include_held": "true"}, headers=moderator
    )
    assert [m["id"] for m in with_held.json()["items"]] == [held_id, later["id"]]
    queue = await client.get("/api/live/chat/held", params={"stream_id": live}, headers=moderator)
    assert [m["id"] for m in queue.json()] == [held_id]

    approved = await client.post(f"/api/live/chat/{held_id}/approve", headers=moderator)
    assert approved.status_code == 200
    assert approved.json()["message"] == "is this spam?"
    again = await client.post(f"/api/live/chat/{held_id}/approve", headers=moderator)
    assert again.status_code == 409
    # Approved now, so it is the newest message.
    assert [m["id"] for m in await history(client, live)] == [later["id"], held_id]
    events = chat_events(await events_of(js, env, live, count=2, kind="chat.>"))
    assert [(kind, data["message"]["id"]) for kind, data in events] == [
        ("chat.posted", later["id"]),
        ("chat.posted", held_id),
    ]


async def test_a_refused_held_message_is_never_published(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str, moderator: dict
) -> None:
    await set_options(client, live, moderator, blocked_words=["spam"], blocked_words_action="hold")
    _, headers = viewer()
    held = (await post(client, headers, live, "spam spam")).json()
    assert (
        await client.delete(f"/api/live/chat/{held['id']}", headers=moderator)
    ).status_code == 204
    queue = await client.get("/api/live/chat/held", params={"stream_id": live}, headers=moderator)
    assert queue.json() == []
    assert chat_events(await events_of(js, env, live, count=0, kind="chat.>")) == []


# --- who may do what -----------------------------------------------------------------------------


async def test_the_auth_matrix(
    client: httpx.AsyncClient, live: str, tokens: dict[str, str]
) -> None:
    """Anyone reads; signed-in users post; moderators and admins moderate; nobody else does."""
    callers: dict[str, dict[str, str] | None] = {
        "anonymous": None,
        "user": auth(tokens["user"]),
        "moderator": auth(tokens["moderator"]),
        "admin": auth(tokens["admin"]),
    }
    for who, headers in callers.items():
        assert (await client.get("/api/live/chat", params={"stream_id": live})).is_success
        reads = [
            await client.get("/api/live/chat", params={"stream_id": live}, headers=headers),
            await client.get("/api/live/chat/pinned", params={"stream_id": live}, headers=headers),
            await client.get(f"/api/live/streams/{live}/chat", headers=headers),
        ]
        assert [r.status_code for r in reads] == [200, 200, 200], who
        expected_post = 401 if headers is None else 201
        assert (await post(client, headers, live, f"hi from {who}")).status_code == expected_post

    async def moderation(headers: dict[str, str] | None) -> list[int]:
        message = await posted(client, live, "to moderate")
        mid = message["id"]
        calls = [
            client.post(f"/api/live/chat/{mid}/pin", headers=headers),
            client.delete(f"/api/live/chat/{mid}/pin", headers=headers),
            client.delete(f"/api/live/chat/{mid}", headers=headers),
            client.post(
                "/api/live/chat/bans",
                json={"user_id": "troll", "stream_id": live, "scope": "live", "duration_s": 1},
                headers=headers,
            ),
            client.get("/api/live/chat/bans", headers=headers),
            client.delete(f"/api/live/chat/bans/{uuid4()}", headers=headers),
            client.put(f"/api/live/streams/{live}/chat", json={"slow_mode_s": 0}, headers=headers),
            client.get("/api/live/chat/held", params={"stream_id": live}, headers=headers),
            client.post(f"/api/live/chat/{mid}/approve", headers=headers),
        ]
        return [(await call).status_code for call in calls]

    assert await moderation(callers["anonymous"]) == [401] * 9
    assert await moderation(callers["user"]) == [403] * 9
    allowed = [200, 204, 204, 201, 200, 404, 200, 200, 404]
    assert await moderation(callers["moderator"]) == allowed
    assert await moderation(callers["admin"]) == allowed
