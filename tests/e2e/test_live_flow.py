"""A live's life seen only through the gateway: HTTP for the admin, a websocket for the viewer."""

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import auth
from tests.support.viewer import WsViewer

HIDDEN = ("viewers.updated",)


async def create_live(gateway, tokens, title="Spring collection") -> dict:
    created = await gateway.post(
        "/api/live/streams", json={"title": title}, headers=auth(tokens["admin"])
    )
    assert created.status_code == 201, created.text
    return created.json()


async def test_a_viewer_sees_the_live_start_and_a_reconnect_replays_exactly_what_it_missed(
    gateway, tokens, system
):
    live = await create_live(gateway, tokens)
    viewer = await WsViewer.open(system.url("gateway"), live["id"])
    snapshot = await viewer.next()
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"]["stream"]["status"] == "scheduled"
    assert snapshot["data"]["stream"]["title"] == "Spring collection"

    started = await gateway.post(
        f"/api/live/streams/{live['id']}/start", headers=auth(tokens["admin"])
    )
    assert started.status_code == 200, started.text
    frame = await viewer.next_of("stream.started")
    assert frame["stream_id"] == live["id"]
    assert frame["data"]["stream"]["status"] == "live"
    assert frame["seq"] > snapshot["seq"]
    last_seen = frame["seq"]
    await viewer.close()

    # While the viewer is away: two changes.
    for title in ("Spring collection — part 2", "Spring collection — finale"):
        answer = await gateway.put(
            f"/api/live/streams/{live['id']}", json={"title": title}, headers=auth(tokens["admin"])
        )
        assert answer.status_code == 200, answer.text

    back = await WsViewer.open(system.url("gateway"), live["id"], since=last_seen)
    missed = [await back.next_of("stream.updated") for _ in range(2)]
    assert [f["data"]["stream"]["title"] for f in missed] == [
        "Spring collection — part 2",
        "Spring collection — finale",
    ]
    ended = await gateway.post(f"/api/live/streams/{live['id']}/end", headers=auth(tokens["admin"]))
    assert ended.status_code == 200
    missed.append(await back.next_of("stream.ended"))
    seqs = [f["seq"] for f in missed]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] > last_seen
    assert all(f["type"] != "snapshot" for f in back.seen)
    assert await back.silent_for(1.0, ignoring=HIDDEN), "an event came twice"
    await back.close()

    # Once it is over, the live is gone for viewers: no consumer is made for it.
    late = await WsViewer.open(system.url("gateway"), live["id"], since=last_seen)
    with pytest.raises(ConnectionClosed) as closed:
        await late.next()
    assert closed.value.rcvd.code == 4404


async def test_events_after_the_snapshot_arrive_in_order_each_once(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Ordering")
    viewer = await WsViewer.open(system.url("gateway"), live["id"])
    await viewer.next_of("snapshot")
    titles = [f"Ordering {n}" for n in range(20)]
    for title in titles:
        answer = await gateway.put(
            f"/api/live/streams/{live['id']}", json={"title": title}, headers=auth(tokens["admin"])
        )
        assert answer.status_code == 200
    received = [await viewer.next_of("stream.updated") for _ in titles]
    assert [f["data"]["stream"]["title"] for f in received] == titles
    seqs = [f["seq"] for f in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert await viewer.silent_for(0.5, ignoring=HIDDEN)
    await viewer.close()


async def test_a_resume_point_too_old_or_unknown_gets_a_fresh_snapshot(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Fresh snapshot")
    for since in (10**12,):
        viewer = await WsViewer.open(system.url("gateway"), live["id"], since=since)
        first = await viewer.next()
        assert first["type"] == "snapshot"
        assert first["data"]["stream"]["id"] == live["id"]
        await viewer.close()


async def test_ping_gets_pong_and_garbage_gets_an_error_frame(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Ping")
    viewer = await WsViewer.open(system.url("gateway"), live["id"])
    await viewer.next_of("snapshot")
    await viewer.send({"type": "ping"})
    assert (await viewer.next_of("pong", "error"))["type"] == "pong"
    await viewer.connection.send("not json")
    error = await viewer.next_of("error", "pong")
    assert error["type"] == "error" and error["data"]["status"] == 400
    await viewer.connection.send(b"\x00\x01 binary")
    assert (await viewer.next_of("error"))["data"]["status"] == 400
    await viewer.send({"type": "chat.post", "message": "hello"})
    anonymous_chat = await viewer.next_of("error")
    assert anonymous_chat["data"]["status"] == 401
    await viewer.close()


async def test_viewer_counts_are_pushed_to_viewers(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Audience")
    first = await WsViewer.open(system.url("gateway"), live["id"], session_id="viewer-one-1")
    await first.next_of("snapshot")
    second = await WsViewer.open(system.url("gateway"), live["id"], session_id="viewer-two-2")
    await second.next_of("snapshot")
    while True:
        figures = (await first.next_of("viewers.updated"))["data"]
        if figures["current"] == 2:
            break
    assert figures["peak"] >= 2 and figures["total"] == 2 and figures["unique"] == 2
    await second.close()
    while True:
        figures = (await first.next_of("viewers.updated"))["data"]
        if figures["current"] == 1:
            break
    assert figures["peak"] == 2
    aggregated = (await gateway.get(f"/api/live/streams/{live['id']}")).json()
    assert aggregated["viewers"]["current"] == 1
    await first.close()


UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("stream_id", "query", "code"),
    [
        ("not-a-uuid", {}, 4400),
        (UNKNOWN, {}, 4404),
        (UNKNOWN, {"since": 1}, 4404),
        (UNKNOWN, {"since": "abc"}, 4400),
        (UNKNOWN, {"since": -1}, 4400),
        (UNKNOWN, {"session_id": "x"}, 4400),
    ],
)
async def test_a_socket_to_a_bad_or_unknown_live_is_closed_with_a_reason(
    system, stream_id, query, code
):
    viewer = await WsViewer.open(system.url("gateway"), stream_id, **query)
    with pytest.raises(ConnectionClosed) as closed:
        await viewer.next()
    assert closed.value.rcvd.code == code


async def test_a_socket_with_a_bad_token_is_closed_unauthorized(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Bad token")
    viewer = await WsViewer.open(system.url("gateway"), live["id"], token="not.a.jwt")
    with pytest.raises(ConnectionClosed) as closed:
        await viewer.next()
    assert closed.value.rcvd.code == 4401


async def test_no_stream_key_ever_reaches_a_viewer(gateway, tokens, system):
    live = await create_live(gateway, tokens, "Secret keeping")
    key = live["stream_key"]
    assert len(key) >= 22
    viewer = await WsViewer.open(system.url("gateway"), live["id"], token=tokens["admin"])
    await viewer.next_of("snapshot")
    await gateway.post(f"/api/live/streams/{live['id']}/start", headers=auth(tokens["admin"]))
    rotated = await gateway.post(
        f"/api/live/streams/{live['id']}/rotate-key", headers=auth(tokens["admin"])
    )
    new_key = rotated.json()["stream_key"]
    assert new_key != key
    await gateway.post(f"/api/live/streams/{live['id']}/end", headers=auth(tokens["admin"]))
    await viewer.next_of("stream.ended")
    await asyncio.sleep(0.3)
    seen = json.dumps(viewer.seen)
    assert key not in seen and new_key not in seen
    await viewer.close()
    for headers in ({}, auth(tokens["user"])):
        for path in ("/api/live/streams", f"/api/live/streams/{live['id']}"):
            body = (await gateway.get(path, headers=headers)).text
            assert key not in body and new_key not in body
