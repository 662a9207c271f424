"""With ffmpeg publishing to a local nginx-rtmp, the viewer page's video actually plays."""

from playwright.async_api import expect

from tests.browser.conftest import eventually_playing
from tests.conftest import auth
from tests.support.encoder import publishing


async def test_the_viewer_page_plays_the_video_an_encoder_publishes(
    nginx_rtmp, new_page, gateway, tokens, screenshot
):
    created = await gateway.post(
        "/api/live/streams", json={"title": "On camera"}, headers=auth(tokens["admin"])
    )
    live = created.json()
    assert live["obs"]["server"] == nginx_rtmp.ingest_url
    viewer = await new_page()
    await viewer.goto(f"/live/{live['id']}")
    await expect(viewer.locator("#video-waiting")).to_be_visible()

    async with publishing(f"{nginx_rtmp.ingest_url}/{live['obs']['stream_key']}"):
        await expect(viewer.locator("#live-badge")).to_have_text("LIVE", timeout=15_000)
        video = viewer.locator("#video")
        first = await eventually_playing(video)
        await viewer.wait_for_timeout(2_000)
        assert await video.evaluate("v => v.currentTime") > first + 1
        assert "blob:" in (await video.evaluate("v => v.currentSrc"))  # hls.js, not a fallback
        await screenshot(viewer, "viewer-playing")
