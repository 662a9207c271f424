"""Chat through the gateway: viewers on websockets, posts over HTTP and the socket, moderation."""

import secrets

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.conftest import auth, eventually
from tests.support.viewer import WsViewer

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def new_user(name: str) -> str:
    return issue_token(secret=INSECURE_JWT_SECRET, user_id=f"u-{secrets.token_hex(4)}", name=name)


async def chat_ready_live(gateway, tokens, title: str) -> str:
    created = await gateway.post(
        "/api/live/streams", json={"title": title}, headers=auth(tokens["admin"])
    )
    live_id = created.json()["id"]

    async def chat_knows_it():
        return (await gateway.get(f"/api/live/streams/{live_id}/chat")).status_code == 200

    await eventually(chat_knows_it)
    return live_id


async def test_a_message_posted_by_one_viewer_reaches_every_viewer(gateway, tokens, system):
    live_id = await chat_ready_live(gateway, tokens, "Chat round trip")
    zoe = new_user("Zoé")
    viewers = [
        await WsViewer.open(system.url("gateway"), live_id, token=zoe),
        await WsViewer.open(system.url("gateway"), live_id),
    ]
    for viewer in viewers:
        await viewer.next_of("snapshot")

    posted = await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": f"  {XSS}  "}, headers=auth(zoe)
    )
    assert posted.status_code == 201, posted.text
    await viewers[0].send({"type": "chat.post", "message": "second, from the socket"})
    for viewer in viewers:
        first = await viewer.next_of("chat.posted")
        second = await viewer.next_of("chat.posted")
        assert first["data"]["message"]["message"] == XSS  # inert text, as it was typed
        assert first["data"]["message"]["display_name"] == "Zoé"
        assert second["data"]["message"]["message"] == "second, from the socket"
        assert second["seq"] > first["seq"]
    history = (await gateway.get(f"/api/live/chat?stream_id={live_id}")).json()["items"]
    assert [m["message"] for m in history] == [XSS, "second, from the socket"]
    for viewer in viewers:
        await viewer.close()


async def test_anonymous_viewers_read_but_cannot_post(gateway, tokens, system):
    live_id = await chat_ready_live(gateway, tokens, "Anonymous")
    answer = await gateway.post("/api/live/chat", json={"stream_id": live_id, "message": "hi"})
    assert answer.status_code == 401
    viewer = await WsViewer.open(system.url("gateway"), live_id)
    await viewer.next_of("snapshot")
    await viewer.send({"type": "chat.post", "message": "hi"})
    assert (await viewer.next_of("error"))["data"]["status"] == 401
    assert (await gateway.get(f"/api/live/chat?stream_id={live_id}")).json()["items"] == []
    await viewer.close()


async def test_moderation_is_seen_by_viewers_and_by_late_joiners(gateway, tokens, system):
    live_id = await chat_ready_live(gateway, tokens, "Moderated")
    ana, troll = new_user("Ana"), new_user("Troll")
    viewer = await WsViewer.open(system.url("gateway"), live_id)
    await viewer.next_of("snapshot")
    welcome = (await post(gateway, live_id, "Welcome!", ana)).json()
    spam = (await post(gateway, live_id, "BUY CHEAP", troll)).json()
    moderator = auth(tokens["moderator"])
    assert (
        await gateway.post(f"/api/live/chat/{welcome['id']}/pin", headers=moderator)
    ).status_code == 200
    assert (
        await gateway.delete(f"/api/live/chat/{spam['id']}", headers=moderator)
    ).status_code == 204
    banned = await gateway.post(
        "/api/live/chat/bans",
        json={"user_id": _sub(troll), "stream_id": live_id, "scope": "live"},
        headers=moderator,
    )
    assert banned.status_code == 201, banned.text

    assert (await viewer.next_of("chat.pinned"))["data"]["message"]["id"] == welcome["id"]
    assert (await viewer.next_of("chat.deleted"))["data"]["message_id"] == spam["id"]
    assert (await viewer.next_of("chat.user_banned"))["data"]["user_id"] == _sub(troll)

    refused = await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": "again"}, headers=auth(troll)
    )
    assert refused.status_code == 403
    late = await WsViewer.open(system.url("gateway"), live_id)
    snapshot = (await late.next_of("snapshot"))["data"]
    assert [m["id"] for m in snapshot["pinned_messages"]] == [welcome["id"]]
    assert [m["message"] for m in snapshot["recent_messages"]] == ["Welcome!"]
    aggregated = (await gateway.get(f"/api/live/streams/{live_id}")).json()
    assert [m["id"] for m in aggregated["pinned_messages"]] == [welcome["id"]]
    user_tries = await gateway.delete(f"/api/live/chat/{welcome['id']}", headers=auth(ana))
    assert user_tries.status_code == 403
    for socket in (viewer, late):
        await socket.close()


async def test_slow_mode_answers_429_with_retry_after_over_http_and_the_socket(
    gateway, tokens, system
):
    live_id = await chat_ready_live(gateway, tokens, "Slow")
    options = await gateway.put(
        f"/api/live/streams/{live_id}/chat", json={"slow_mode_s": 30}, headers=auth(tokens["admin"])
    )
    assert options.status_code == 200, options.text
    eve = new_user("Eve")
    first = await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": "one"}, headers=auth(eve)
    )
    assert first.status_code == 201
    second = await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": "two"}, headers=auth(eve)
    )
    assert second.status_code == 429
    assert 0 < int(second.headers["retry-after"]) <= 30
    viewer = await WsViewer.open(system.url("gateway"), live_id, token=eve)
    await viewer.next_of("snapshot")
    await viewer.send({"type": "chat.post", "message": "three"})
    error = (await viewer.next_of("error"))["data"]
    assert error["status"] == 429 and error["retry_after"] > 0
    await viewer.close()


async def post(gateway, live_id: str, message: str, token: str):
    return await gateway.post(
        "/api/live/chat", json={"stream_id": live_id, "message": message}, headers=auth(token)
    )


def _sub(token: str) -> str:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["sub"]
