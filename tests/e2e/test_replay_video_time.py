"""A shoppable replay in the video's own time, with real nginx-rtmp and ffmpeg: an encoder at half
speed (less than a second of video each second) that drops and comes back within the grace, so
the recording lacks the gap and runs slower than the clock. The encoder shows which product is
featured (a bar as wide as its caption) and each card of the replay's timeline must be on screen
while its product is."""

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from tests.conftest import auth, eventually
from tests.e2e.conftest import GRACE_S
from tests.e2e.test_products_flow import catalog_product
from tests.support.encoder import bar_widths, publishing, show
from vitrine import nginx_rtmp

pytestmark = pytest.mark.skipif(
    nginx_rtmp.unavailable() is not None, reason=str(nginx_rtmp.unavailable())
)

SPEED = 0.5
# Each product's caption, and the bar's width it makes (DejaVu Sans Mono at 40 px: 24 px a
# character).
CAPTIONS = {"Scarf": "XX", "Coat": "XXXXXX", "Boots": "XXXXXXXXXX"}
WIDTHS = {name: 24 * len(caption) for name, caption in CAPTIONS.items()}
# What a card may be off the picture by, in seconds of video. ffmpeg makes its first frames
# before it connects, so a take starts a little before nginx's on_publish says (0.3 s of video
# here, at half speed); the wall clock was off by seconds.
SLACK_S = 0.6


@pytest.fixture
async def long_grace(gateway, tokens, nginx, on_test_nginx) -> AsyncIterator[None]:
    """Time enough for ffmpeg to be started again before the live ends."""
    admin = auth(tokens["admin"])
    config = (await gateway.get("/api/live/settings", headers=admin)).json()["config"]
    longer = {"platform": "nginx_rtmp", "config": {**config, "reconnect_grace_s": 10}}
    assert (await gateway.put("/api/live/settings", json=longer, headers=admin)).is_success
    yield
    config["reconnect_grace_s"] = GRACE_S
    await gateway.put("/api/live/settings", json={"platform": "nginx_rtmp", "config": config},
                      headers=admin)  # fmt: skip


async def test_each_card_is_on_screen_while_its_product_is_after_a_slow_encoder_reconnects(
    gateway, system, nginx, long_grace, tokens
):
    admin = auth(tokens["admin"])
    live = (await gateway.post("/api/live/streams", json={"title": "Slow"}, headers=admin)).json()
    url = f"/api/live/streams/{live['id']}"
    products = {}
    for name in CAPTIONS:
        product = await catalog_product(gateway, tokens, f"Video {name}", "10.00")
        added = await gateway.post(f"{url}/products", json={"product_id": product["id"]},
                                   headers=admin)  # fmt: skip
        assert added.status_code == 201, added.text
        products[name] = product["id"]
    caption = nginx.root / f"caption-{live['id']}.txt"

    async def feature(name: str) -> None:
        show(caption, CAPTIONS[name])
        answer = await gateway.post(f"{url}/products/{products[name]}/feature", headers=admin)
        assert answer.status_code in (200, 201), answer.text

    publish_url = f"{nginx.ingest_url}/{live['stream_key']}"
    await feature("Scarf")  # before the encoder starts: on screen from the first frame
    async with publishing(publish_url, speed=SPEED, caption=caption):
        await eventually(lambda: _live(gateway, admin, url), timeout=20, interval=0.2)
        await asyncio.sleep(5)
        await feature("Coat")
        await asyncio.sleep(5)
    await feature("Boots")  # while the encoder is away: seen once it is back
    await asyncio.sleep(1)
    async with publishing(publish_url, speed=SPEED, caption=caption):
        await eventually(lambda: _connected(gateway, admin, url), timeout=20, interval=0.2)
        await asyncio.sleep(4)
        await feature("Scarf")
        await asyncio.sleep(4)
        ended = await gateway.post(f"{url}/end", headers=admin)  # drops the encoder
        assert ended.status_code == 200, ended.text

    # Once the last take's file is remuxed (after the end), the replay knows its own length.
    stream = await eventually(lambda: _measured(gateway, admin, url), timeout=60, interval=0.5)
    replay = (await gateway.get(f"{url}/replay")).json()
    video = nginx.root / f"replay-{live['id']}.mp4"
    async with httpx.AsyncClient(timeout=10) as client:
        video.write_bytes((await client.get(replay["replay_url"])).content)
    frames = [(at, _product(width)) for at, width in await bar_widths(video)]
    assert replay["duration_s"] == stream["recording"]["duration_s"]
    assert replay["duration_s"] == pytest.approx(frames[-1][0], abs=0.2)

    timeline = [
        (m["name"].removeprefix("Video "), m["from_s"], m["to_s"]) for m in replay["timeline"]
    ]
    assert [name for name, _, _ in timeline] == ["Scarf", "Coat", "Boots", "Scarf"]
    for name, from_s, to_s in timeline:
        shown = {product for at, product in frames if from_s + SLACK_S <= at <= to_s - SLACK_S}
        assert shown == {name}, (name, from_s, to_s, _changes(frames))

    # How far the cards are from the picture: the moments it changes, against the timeline and
    # against the wall clock from the live's start (what the timeline used to be).
    changes = _changes(frames)
    history = (await gateway.get(f"{url}/featured-history", headers=admin)).json()
    started = datetime.fromisoformat(stream["started_at"])
    wall = [(datetime.fromisoformat(p["featured_at"]) - started).total_seconds() for p in history]
    cards = [from_s for _, from_s, _ in timeline[1:]]
    drift = [abs(card - at) for card, (at, _) in zip(cards, changes, strict=True)]
    before = [abs(card - at) for card, (at, _) in zip(wall[1:], changes, strict=True)]
    print(
        f"\nvideo {replay['duration_s']:.2f} s, on air "
        f"{(datetime.fromisoformat(stream['ended_at']) - started).total_seconds():.2f} s; "
        f"picture changes at {[at for at, _ in changes]}; cards at {cards} (drift ≤ "
        f"{max(drift):.2f} s); on the wall clock at {[round(w, 2) for w in wall[1:]]} "
        f"(drift ≤ {max(before):.2f} s)"
    )
    assert [product for _, product in changes] == ["Coat", "Boots", "Scarf"]
    assert max(drift) <= SLACK_S


def _product(width: int) -> str | None:
    """The product whose caption makes a bar this wide (None: none does)."""
    name, expected = min(WIDTHS.items(), key=lambda item: abs(item[1] - width))
    return name if abs(expected - width) <= 12 else None


def _changes(frames: list[tuple[float, str | None]]) -> list[tuple[float, str | None]]:
    """When the product on screen changes in the video, and to which."""
    pairs = itertools.pairwise(frames)
    return [(at, product) for (_, before), (at, product) in pairs if product != before]


async def _live(gateway: httpx.AsyncClient, admin: dict, url: str) -> bool:
    stream = (await gateway.get(url, headers=admin)).json()["stream"]
    return stream["status"] == "live"


async def _connected(gateway: httpx.AsyncClient, admin: dict, url: str) -> bool:
    stream = (await gateway.get(url, headers=admin)).json()["stream"]
    return stream["provider_state"] == "connected" and stream["end_deadline"] is None


async def _measured(gateway: httpx.AsyncClient, admin: dict, url: str) -> dict | None:
    """The live once both takes are over and measured in the file."""
    stream = (await gateway.get(url, headers=admin)).json()["stream"]
    takes = (stream.get("recording") or {}).get("takes") or []
    if len(takes) == 2 and all(t["ended_at"] and t["video_end_s"] for t in takes):
        return stream
    return None
