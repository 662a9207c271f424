"""A live's replay in the viewer page: ffmpeg publishes to the local nginx-rtmp, the live features
one product then another and ends; its MP4 plays and the featured card follows the video. And a
replay made after the live ended (as Mux's, minutes later) comes to the page by itself."""

import asyncio

from playwright.async_api import expect

from tests.browser.conftest import eventually_playing
from tests.conftest import auth, eventually
from tests.e2e.test_replay import nginx_says, no_grace  # noqa: F401 (no_grace: a fixture)
from tests.support.encoder import publishing


async def catalog_product(gateway, admin: dict, name: str, price: str) -> dict:
    created = await gateway.post(
        "/api/catalog/products", json={"name": name, "price": price, "currency": "EUR"},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return created.json()


async def status_is(gateway, admin: dict, stream_id: str, status: str) -> bool:
    answer = await gateway.get(f"/api/live/streams/{stream_id}", headers=admin)
    return answer.json()["stream"]["status"] == status


async def replay_of(gateway, stream_id: str) -> dict | None:
    answer = await gateway.get(f"/api/live/streams/{stream_id}/replay")
    return answer.json() if answer.status_code == 200 else None


async def seek(video, seconds: float, *, play: bool = False) -> None:
    await video.evaluate("(v, t) => { v.pause(); v.currentTime = t; }", seconds)
    if play:
        await video.evaluate("v => v.play()")


async def test_a_replay_plays_and_shows_the_product_featured_at_each_moment_for_sale(
    nginx_rtmp, new_page, gateway, tokens, screenshot
):
    admin = auth(tokens["admin"])
    created = await gateway.post("/api/live/streams", json={"title": "Winter"}, headers=admin)
    live = created.json()
    url = f"/api/live/streams/{live['id']}"
    scarf = await catalog_product(gateway, admin, "Merino scarf", "29.00")
    coat = await catalog_product(gateway, admin, "Wool coat", "189.00")
    for product in (scarf, coat):
        added = await gateway.post(f"{url}/products", json={"product_id": product["id"]},
                                   headers=admin)  # fmt: skip
        assert added.status_code == 201, added.text

    watcher = await new_page()  # watches the live, and then its replay without a reload
    await watcher.goto(f"/live/{live['id']}")
    async with publishing(f"{nginx_rtmp.ingest_url}/{live['obs']['stream_key']}"):
        await eventually(lambda: status_is(gateway, admin, live["id"], "live"), timeout=15)
        await expect(watcher.locator("#live-badge")).to_have_text("LIVE", timeout=15_000)
        # A few seconds of picture with nothing featured, then the scarf, then the coat.
        for product in (scarf, coat):
            await asyncio.sleep(3)
            featured = await gateway.post(f"{url}/products/{product['id']}/feature", headers=admin)
            assert featured.status_code == 200, featured.text
        await asyncio.sleep(4)
    replay = await eventually(lambda: replay_of(gateway, live["id"]), timeout=30)
    assert replay["replay_url"].endswith(".mp4"), nginx_rtmp.logs()
    first, then = replay["timeline"]
    assert (first["name"], then["name"]) == ("Merino scarf", "Wool coat")
    await expect(watcher.locator("#live-badge")).to_have_text("Replay", timeout=30_000)
    assert await watcher.locator("#video").evaluate("v => v.currentSrc") == replay["replay_url"]

    viewer = await new_page()
    await viewer.goto(f"/live/{live['id']}")
    await expect(viewer.locator("#live-badge")).to_have_text("Replay", timeout=15_000)
    video = viewer.locator("#video")
    await eventually_playing(video)  # the MP4, from its start
    assert await video.evaluate("v => v.currentSrc") == replay["replay_url"]
    card = viewer.locator("#featured-card")

    # The card follows the video: seeking to each moment shows what was featured then ...
    await seek(video, first["from_s"] / 2)
    await expect(card).to_contain_text("No product featured yet.")
    await seek(video, (first["from_s"] + first["to_s"]) / 2)
    await expect(card.locator("h3")).to_have_text("Merino scarf")
    await seek(video, (then["from_s"] + then["to_s"]) / 2)
    await expect(card.locator("h3")).to_have_text("Wool coat")
    await expect(viewer.locator("#product-list .is-featured")).to_contain_text("Wool coat")
    # ... and so does playing on: just before the coat came, then past it.
    await seek(video, max(first["from_s"], then["from_s"] - 1), play=True)
    await expect(card.locator("h3")).to_have_text("Wool coat", timeout=10_000)
    assert await video.evaluate("v => v.currentTime") >= then["from_s"]

    # Shoppable: the card's button adds the coat to the viewer's cart.
    await card.locator("button.add-to-cart").click()
    await expect(viewer.locator("#cart-status")).to_contain_text("Added to cart")
    # The chat reads as it was; nobody writes in a replay.
    await expect(viewer.locator("#chat-form")).to_be_hidden()
    await expect(viewer.locator("#chat-signin")).to_contain_text("Replay")
    await expect(viewer.locator("#viewer-count")).to_be_hidden()
    await seek(video, (then["from_s"] + then["to_s"]) / 2)
    await screenshot(viewer, "viewer-replay")
    assert viewer.errors == [] and watcher.errors == []

    french = await new_page(locale="fr-FR")
    await french.goto(f"/live/{live['id']}")
    await expect(french.locator("#live-badge")).to_have_text("Rediffusion", timeout=15_000)


async def test_an_ended_live_whose_replay_is_not_made_yet_says_it_is_coming_then_shows_it(
    new_page,
    gateway,
    tokens,
    no_grace,  # noqa: F811
):
    admin = auth(tokens["admin"])
    created = await gateway.post("/api/live/streams", json={"title": "Late"}, headers=admin)
    live = created.json()
    page = await new_page()
    await page.goto(f"/live/{live['id']}")
    await nginx_says(gateway, "on_publish", name=live["stream_key"])
    await expect(page.locator("#live-badge")).to_have_text("LIVE", timeout=15_000)
    await nginx_says(gateway, "on_publish_done", name=live["playback_id"])  # no grace: ended
    await expect(page.locator("#live-badge")).to_have_text("Ended", timeout=15_000)

    # The socket comes back once the gateway no longer remembers the live as visible (5 s):
    # refused (4404), and no replay yet. The page keeps what it showed and says one is coming.
    await asyncio.sleep(6)
    await page.evaluate("window.vitrine.socket.reconnectNow()")
    soon = "The replay is coming soon"
    await expect(page.locator("#video-waiting")).to_contain_text(soon, timeout=15_000)
    await expect(page.locator("#notice")).to_be_hidden()
    # A reload in the same tab remembers the live ended; the label follows the language.
    await page.reload()
    await expect(page.locator("#notice")).to_contain_text(soon, timeout=15_000)
    await page.locator("#lang").click()
    await expect(page.locator("#notice")).to_contain_text("La rediffusion arrive bientôt")

    # The recording is made: within a check (15 s), the replay plays without a reload.
    path = f"/tmp/recordings/{live['playback_id']}.mp4"
    await nginx_says(gateway, "on_record_done", name=live["playback_id"], path=path)
    await expect(page.locator("#live-badge")).to_have_text("Rediffusion", timeout=40_000)
    await expect(page.locator("#notice")).to_be_hidden()
    assert page.errors == []
