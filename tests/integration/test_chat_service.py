"""The chat service through HTTP, over real PostgreSQL, NATS JetStream and Redis: posting,
history, flood protection, and the lives' states learnt from `stream.*` events."""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import nats
import orjson
import pytest
from nats.js import JetStreamContext
from pydantic import BaseModel

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from contracts import new_envelope
from contracts.streams import (
    Platform,
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamStatus,
    StreamView,
)
from services.chat.app import create_app, migrate
from services.chat.settings import ChatSettings
from tests.conftest import auth, eventually
from tests.support.services import serving

XSS = "<img src=x onerror=alert(1)>"
_users = itertools.count(1)


# --- shared with test_chat_moderation ------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_chat(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    settings = ChatSettings(**env)
    await migrate(settings)
    async with serving(create_app(settings), "chat") as client:
        yield client


def viewer(*, name: str | None = None, role: str | None = None) -> tuple[str, dict[str, str]]:
    """A new signed-in user of their own (so limits never carry over between tests)."""
    user_id = f"viewer-{next(_users)}-{uuid4().hex[:6]}"
    token = issue_token(secret=INSECURE_JWT_SECRET, user_id=user_id, name=name, role=role)
    return user_id, auth(token)


async def announce(js: JetStreamContext, env: dict, stream_id: UUID, payload: BaseModel) -> None:
    """Publish a `stream.*` event as the streams service's relay would."""
    envelope = new_envelope(payload, stream_id=stream_id, producer="streams")
    await js.publish(
        f"{env['subject_root']}.{stream_id}.{envelope.type}",
        envelope.model_dump_json().encode(),
        stream=env["jetstream_stream"],
        headers={"Nats-Msg-Id": str(envelope.id)},
    )


def view(stream_id: UUID, status: StreamStatus) -> StreamView:
    now = datetime.now(UTC)
    return StreamView(
        id=stream_id,
        title="Spring collection",
        status=status,
        platform=Platform.NGINX_RTMP,
        created_at=now,
        updated_at=now,
    )


async def open_live(client: httpx.AsyncClient, js: JetStreamContext, env: dict) -> str:
    """A live on air, once the chat service has heard of it."""
    stream_id = uuid4()
    await announce(
        js, env, stream_id, StreamCreated(stream=view(stream_id, StreamStatus.SCHEDULED))
    )
    await announce(js, env, stream_id, StreamStarted(stream=view(stream_id, StreamStatus.LIVE)))

    async def known() -> bool:
        return (await client.get(f"/api/live/streams/{stream_id}/chat")).status_code == 200

    await eventually(known)
    return str(stream_id)


async def post(
    client: httpx.AsyncClient, headers: dict[str, str] | None, stream_id: str, message: str
) -> httpx.Response:
    return await client.post(
        "/api/live/chat", json={"stream_id": stream_id, "message": message}, headers=headers
    )


async def events_of(
    js: JetStreamContext, env: dict, stream_id: str, *, count: int, kind: str = ">"
) -> list[tuple[str, dict[str, Any]]]:
    """(subject, envelope) of the first `count` events of a live, checking no more arrive."""
    sub = await js.subscribe(
        f"{env['subject_root']}.{stream_id}.{kind}",
        stream=env["jetstream_stream"],
        ordered_consumer=True,
    )
    received: list[tuple[str, dict[str, Any]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) <= count and asyncio.get_running_loop().time() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                if len(received) == count:
                    break
                continue
            received.append((msg.subject, orjson.loads(msg.data)))
    finally:
        await sub.unsubscribe()
    return received


def chat_events(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["data"]) for _, e in events if e["type"].startswith("chat.")]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def client(env: dict) -> AsyncIterator[httpx.AsyncClient]:
    async with running_chat(env) as client:
        yield client


@pytest.fixture
async def live(client: httpx.AsyncClient, js: JetStreamContext, env: dict) -> str:
    return await open_live(client, js, env)


# --- posting -------------------------------------------------------------------------------------


async def test_posted_messages_reach_jetstream_in_order_with_author_and_display_name(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str
) -> None:
    user_id, headers = viewer(name="Bob")
    sent = []
    for text in ("first", "  second  ", "third\nline"):
        response = await post(client, headers, live, text)
        assert response.status_code == 201, response.text
        sent.append(response.json())
    assert [m["message"] for m in sent] == ["first", "second", "third\nline"]
    assert all(m["user_id"] == user_id and m["display_name"] == "Bob" for m in sent)
    assert not any(m["is_pinned"] for m in sent)

    events = await events_of(js, env, live, count=3, kind="chat.>")
    assert [subject for subject, _ in events] == [f"{env['subject_root']}.{live}.chat.posted"] * 3
    assert [e["data"]["message"] for _, e in events] == sent
    assert all(e["producer"] == "chat" and e["stream_id"] == live for _, e in events)


async def test_an_anonymous_viewer_reads_the_chat_but_cannot_post(
    client: httpx.AsyncClient, live: str
) -> None:
    assert (await post(client, None, live, "hello")).status_code == 401
    bad = await post(client, {"Authorization": "Bearer nonsense"}, live, "hello")
    assert bad.status_code == 401
    page = await client.get("/api/live/chat", params={"stream_id": live})
    assert page.status_code == 200
    assert page.json() == {"items": [], "next_cursor": None, "next_before": None}


async def test_an_xss_payload_comes_back_as_the_same_inert_text(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str
) -> None:
    _, headers = viewer()
    for payload in (XSS, "<script>alert('x')</script> &amp; \"quoted\""):
        response = await post(client, headers, live, payload)
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert response.json()["message"] == payload
    history = (await client.get("/api/live/chat", params={"stream_id": live})).json()
    assert history["items"][0]["message"] == XSS
    assert XSS.encode() in (await client.get("/api/live/chat", params={"stream_id": live})).content
    events = await events_of(js, env, live, count=2, kind="chat.posted")
    assert events[0][1]["data"]["message"]["message"] == XSS


@pytest.mark.parametrize(
    "message", ["", "   ", "a" * 501, "bell\x07", "tab\there", "nul\x00", "esc\x1b[31m", "c1\x9b"]
)
async def test_empty_overlong_or_control_character_messages_are_refused(
    client: httpx.AsyncClient, live: str, message: str
) -> None:
    _, headers = viewer()
    response = await post(client, headers, live, message)
    assert response.status_code == 422, response.text


async def test_malformed_posts_are_refused_without_a_server_error(
    client: httpx.AsyncClient, live: str
) -> None:
    _, headers = viewer()
    for body in ({"stream_id": live}, {"stream_id": "nope", "message": "hi"}, {"message": "hi"}):
        assert (await client.post("/api/live/chat", json=body, headers=headers)).status_code == 422
    assert (await post(client, headers, str(uuid4()), "hi")).status_code == 404
    bad_cursor = await client.get("/api/live/chat", params={"stream_id": live, "before": "x!"})
    assert bad_cursor.status_code == 400


# --- flood protection ----------------------------------------------------------------------------


async def test_a_burst_is_answered_429_with_retry_after_while_another_user_posts_fine(
    client: httpx.AsyncClient, live: str
) -> None:
    _, flooder = viewer()
    _, neighbour = viewer()
    statuses = [(await post(client, flooder, live, f"spam {i}")).status_code for i in range(5)]
    assert statuses == [201] * 5
    refused = await post(client, flooder, live, "one more")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "too many messages" in refused.json()["detail"]

    assert (await post(client, neighbour, live, "I am fine")).status_code == 201
    await asyncio.sleep(1.05)
    assert (await post(client, flooder, live, "calmer now")).status_code == 201


async def test_flood_protection_spans_every_live(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str
) -> None:
    other = await open_live(client, js, env)
    _, flooder = viewer()
    for i in range(5):
        assert (await post(client, flooder, live if i % 2 else other, f"hi {i}")).status_code == 201
    assert (await post(client, flooder, other, "again")).status_code == 429


# --- history -------------------------------------------------------------------------------------


async def test_history_pages_lose_and_repeat_nothing_while_messages_keep_arriving(
    client: httpx.AsyncClient, live: str
) -> None:
    posters = [viewer() for _ in range(40)]
    texts = itertools.count()

    async def post_some(n: int) -> list[str]:
        ids = []
        for _ in range(n):
            i = next(texts)
            _, headers = posters[i % len(posters)]
            response = await post(client, headers, live, f"message {i}")
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    existing = await post_some(120)
    seen: list[dict] = []
    before = None
    while True:
        params: dict[str, Any] = {"stream_id": live, "limit": 25}
        if before:
            params["cursor"] = before
        page = (await client.get("/api/live/chat", params=params)).json()
        assert len(page["items"]) <= 25
        seen = page["items"] + seen
        before = page["next_cursor"]
        if before is None:
            break
        await post_some(3)  # newer messages arrive between page requests

    assert [m["id"] for m in seen] == existing  # each once, oldest first, newest last
    created = [m["created_at"] for m in seen]
    assert created == sorted(created)


async def test_the_newest_page_comes_first_and_limits_are_bounded(
    client: httpx.AsyncClient, live: str
) -> None:
    _, headers = viewer()
    for i in range(3):
        assert (await post(client, headers, live, f"m{i}")).status_code == 201
    page = (await client.get("/api/live/chat", params={"stream_id": live, "limit": 2})).json()
    assert [m["message"] for m in page["items"]] == ["m1", "m2"]
    # `before` and `next_before`, the old names, still work for one release.
    assert page["next_before"] == page["next_cursor"]
    older = (
        await client.get(
            "/api/live/chat", params={"stream_id": live, "limit": 2, "before": page["next_before"]}
        )
    ).json()
    assert [m["message"] for m in older["items"]] == ["m0"]
    assert older["next_cursor"] is None and older["next_before"] is None
    forged = await client.get("/api/live/chat", params={"stream_id": live, "cursor": "bTEuMTI"})
    assert forged.status_code == 400 and forged.json() == {"detail": "invalid cursor"}
    too_small = await client.get("/api/live/chat", params={"stream_id": live, "limit": 0})
    assert too_small.status_code == 422
    capped = await client.get("/api/live/chat", params={"stream_id": live, "limit": 10_000})
    assert capped.status_code == 200


# --- the live's state, from stream.* events ------------------------------------------------------


async def test_an_ended_live_refuses_posts_even_if_an_older_event_arrives_late(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str
) -> None:
    _, headers = viewer()
    assert (await post(client, headers, live, "before the end")).status_code == 201
    stream_id = UUID(live)
    await announce(js, env, stream_id, StreamEnded(stream=view(stream_id, StreamStatus.ENDED)))

    async def refused() -> bool:
        return (await post(client, headers, live, "too late")).status_code == 403

    await eventually(refused)
    response = await post(client, headers, live, "too late")
    assert "ended" in response.json()["detail"]

    # A redelivered or reordered `stream.started` never reopens the chat.
    await announce(js, env, stream_id, StreamStarted(stream=view(stream_id, StreamStatus.LIVE)))
    await asyncio.sleep(0.5)
    assert (await post(client, headers, live, "still too late")).status_code == 403
    history = (await client.get("/api/live/chat", params={"stream_id": live})).json()
    assert "still too late" not in [m["message"] for m in history["items"]]


async def test_a_deleted_live_has_no_chat(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, live: str
) -> None:
    _, headers = viewer()
    await announce(js, env, UUID(live), StreamDeleted(stream_id=UUID(live)))

    async def gone() -> bool:
        return (await client.get("/api/live/chat", params={"stream_id": live})).status_code == 404

    await eventually(gone)
    assert (await post(client, headers, live, "hello?")).status_code == 404
    assert (await client.get(f"/api/live/streams/{live}/chat")).status_code == 404


async def test_the_chat_of_a_live_never_announced_is_not_found_to_read_nor_to_post(
    client: httpx.AsyncClient,
) -> None:
    _, headers = viewer()
    unknown = str(uuid4())
    read = await client.get("/api/live/chat", params={"stream_id": unknown})
    assert (read.status_code, read.json()) == (404, {"detail": "live not found"})
    assert (await post(client, headers, unknown, "hello?")).status_code == 404


async def test_a_scheduled_live_already_accepts_messages(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict
) -> None:
    stream_id = uuid4()
    await announce(
        js, env, stream_id, StreamCreated(stream=view(stream_id, StreamStatus.SCHEDULED))
    )
    _, headers = viewer()

    async def accepted() -> bool:
        return (await post(client, headers, str(stream_id), "see you soon")).status_code == 201

    await eventually(accepted)
