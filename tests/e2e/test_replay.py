"""Shoppable replays through the gateway: an ended live's recording with what was featured when.

nginx-rtmp's callbacks are posted here as nginx (and record-done.sh) would post them, so these
tests need no video server; tests/e2e/test_video_nginx_rtmp.py and tests/browser/test_replay.py
run the real one.
"""

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from contracts.streams import StreamView
from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.conftest import auth, eventually, every_page
from tests.e2e.test_products_flow import catalog_product

CALLBACK = {"secret": INSECURE_RTMP_CALLBACK_SECRET}


@pytest.fixture
async def no_grace(gateway, tokens) -> AsyncIterator[None]:
    """nginx-rtmp lives end as soon as their encoder leaves."""
    admin = auth(tokens["admin"])
    before = (await gateway.get("/api/live/settings", headers=admin)).json()
    chosen = await gateway.put(
        "/api/live/settings",
        json={"platform": "nginx_rtmp", "config": {"reconnect_grace_s": 0}},
        headers=admin,
    )
    assert chosen.status_code == 200, chosen.text
    yield
    restored = {"platform": before["platform"], "config": before["config"]}
    await gateway.put("/api/live/settings", json=restored, headers=admin)


async def nginx_says(gateway: httpx.AsyncClient, callback: str, **form: str) -> httpx.Response:
    answer = await gateway.post(f"/webhooks/nginx-rtmp/{callback}", params=CALLBACK, data=form)
    assert answer.status_code in (200, 302), answer.text
    return answer


async def admin_stream(gateway, tokens, stream_id: str) -> dict:
    answer = await gateway.get(f"/api/live/streams/{stream_id}", headers=auth(tokens["admin"]))
    return answer.json()["stream"]


async def replay_of(gateway, stream_id: str, headers: dict | None = None) -> dict | None:
    answer = await gateway.get(f"/api/live/streams/{stream_id}/replay", headers=headers or {})
    return answer.json() if answer.status_code == 200 else None


def seconds(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


async def test_an_ended_live_becomes_a_shoppable_replay_anyone_may_watch_without_secrets(
    gateway, tokens, no_grace
):
    admin = auth(tokens["admin"])
    live = await gateway.post("/api/live/streams", json={"title": "Replay me"}, headers=admin)
    live = live.json()
    url = f"/api/live/streams/{live['id']}"
    scarf, coat = [await catalog_product(gateway, tokens, n, p) for n, p in
                   (("Replay scarf", "29.00"), ("Replay coat", "189.00"))]  # fmt: skip
    for product in (scarf, coat):
        added = await gateway.post(f"{url}/products", json={"product_id": product["id"]},
                                   headers=admin)  # fmt: skip
        assert added.status_code == 201, added.text

    # Featured before the live starts: on screen from the replay's first second.
    await gateway.post(f"{url}/products/{scarf['id']}/feature", headers=admin)
    assert (await gateway.get(f"{url}/replay")).status_code == 404  # scheduled
    await nginx_says(gateway, "on_publish", name=live["stream_key"])
    assert (await admin_stream(gateway, tokens, live["id"]))["status"] == "live"
    await gateway.post(f"{url}/products/{coat['id']}/feature", headers=admin)
    await gateway.delete(f"{url}/featured", headers=admin)
    await gateway.post(f"{url}/products/{scarf['id']}/feature", headers=admin)
    assert (await gateway.get(f"{url}/replay")).status_code == 404  # on air
    await nginx_says(gateway, "on_publish_done", name=live["playback_id"])
    assert (await gateway.get(f"{url}/replay")).status_code == 404  # ended, not recorded yet
    path = f"/tmp/recordings/{live['playback_id']}.mp4"
    await nginx_says(gateway, "on_record_done", name=live["playback_id"], path=path)

    replay = await eventually(lambda: replay_of(gateway, live["id"]), timeout=10)
    stream = await admin_stream(gateway, tokens, live["id"])
    assert stream["status"] == "ended"
    assert replay["replay_url"] == stream["replay_url"]
    assert replay["replay_url"].endswith(f"/{live['playback_id']}.mp4")
    # The public view, nothing more: no key, no provider ids or state.
    assert set(replay["stream"]) == set(StreamView.model_fields)
    assert replay["stream"]["id"] == live["id"]
    text = (await gateway.get(f"{url}/replay")).text
    for secret in (live["stream_key"], "stream_key", "provider", "ingest", "obs"):
        assert secret not in text, secret

    # The timeline counts from the live's start, from what was featured when.
    history = (await gateway.get(f"{url}/featured-history", headers=admin)).json()
    start, end = stream["started_at"], stream["ended_at"]
    assert replay["duration_s"] == seconds(start, end)
    expected = [
        (scarf["id"], 0.0, seconds(start, history[0]["unfeatured_at"])),
        (coat["id"], seconds(start, history[1]["featured_at"]),
         seconds(start, history[1]["unfeatured_at"])),
        (scarf["id"], seconds(start, history[2]["featured_at"]), seconds(start, end)),
    ]  # fmt: skip
    timeline = replay["timeline"]
    assert [(m["product_id"], m["from_s"], m["to_s"]) for m in timeline] == expected
    assert [m["name"] for m in timeline] == ["Replay scarf", "Replay coat", "Replay scarf"]
    assert all(m["is_featured"] and m["price"] for m in timeline)
    assert 0 < timeline[1]["from_s"] < timeline[1]["to_s"] < timeline[2]["from_s"]
    assert [p["name"] for p in replay["products"]] == ["Replay scarf", "Replay coat"]
    assert not any(p["is_featured"] for p in replay["products"])

    # Watching again is shopping again, for anyone.
    click = await gateway.post(f"{url}/products/{coat['id']}/click",
                               json={"session_id": "replay-viewer-01"})  # fmt: skip
    assert click.status_code == 202, click.text
    cart = await gateway.post(
        "/api/live/cart/items",
        json={"stream_id": live["id"], "product_id": coat["id"], "quantity": 1,
              "session_id": "replay-viewer-01"},
    )  # fmt: skip
    assert cart.status_code == 201, cart.text

    # A product hidden afterwards leaves the viewers' history and timeline, not the admin's.
    hidden = await gateway.post(
        f"{url}/products", json={"product_id": coat["id"], "visible": False}, headers=admin
    )
    assert hidden.status_code in (200, 201), hidden.text
    public = (await gateway.get(f"{url}/featured-history")).json()
    assert [p["product_id"] for p in public] == [scarf["id"], scarf["id"]]
    assert len((await gateway.get(f"{url}/featured-history", headers=admin)).json()) == 3
    replay = await replay_of(gateway, live["id"])
    assert [m["product_id"] for m in replay["timeline"]] == [scarf["id"], scarf["id"]]


async def test_only_ended_lives_with_a_replay_are_listed_and_shown_to_viewers(
    gateway, tokens, no_grace
):
    admin = auth(tokens["admin"])

    async def new_live(title: str) -> dict:
        return (
            await gateway.post("/api/live/streams", json={"title": title}, headers=admin)
        ).json()

    recorded, unrecorded, scheduled = [await new_live(t) for t in ("Recorded", "Lost", "Later")]
    for live in (recorded, unrecorded):
        await nginx_says(gateway, "on_publish", name=live["stream_key"])
        await nginx_says(gateway, "on_publish_done", name=live["playback_id"])
    path = f"/tmp/recordings/{recorded['playback_id']}.mp4"
    await nginx_says(gateway, "on_record_done", name=recorded["playback_id"], path=path)
    await eventually(lambda: replay_of(gateway, recorded["id"]), timeout=10)

    callers = {
        "anonymous": {},
        "user": auth(tokens["user"]),
        "moderator": auth(tokens["moderator"]),
        "admin": admin,
    }
    for who, headers in callers.items():
        ended = await every_page(gateway, "/api/live/streams", headers=headers, status="ended")
        listed = [s["id"] for s in ended]
        assert recorded["id"] in listed, who
        assert (unrecorded["id"] in listed) is (who == "admin"), who
        assert {s["status"] for s in ended} == {"ended"}
        default = [s["id"] for s in await every_page(gateway, "/api/live/streams", headers=headers)]
        assert (recorded["id"] in default) is (who == "admin") and scheduled["id"] in default
        if who != "admin":
            assert all("stream_key" not in s for s in ended)
            # An ended live is still not a live to watch: its replay is.
            hidden = await gateway.get(f"/api/live/streams/{recorded['id']}", headers=headers)
            assert hidden.status_code == 404, who
        assert await replay_of(gateway, recorded["id"], headers), who
        for other in (unrecorded, scheduled):
            answer = await gateway.get(f"/api/live/streams/{other['id']}/replay", headers=headers)
            assert answer.status_code == 404, (who, other["title"])
    missing = await gateway.get("/api/live/streams/00000000-0000-4000-8000-000000000000/replay")
    assert missing.status_code == 404
    assert (await gateway.get("/api/live/streams/not-a-uuid/replay")).status_code == 422
