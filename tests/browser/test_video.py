"""With ffmpeg publishing to a local nginx-rtmp, the viewer page's video actually plays."""

import asyncio
import subprocess
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect

from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.browser import nginx
from tests.conftest import auth


@pytest.fixture
async def nginx_rtmp(system, gateway, tokens, tmp_path) -> AsyncIterator[nginx.NginxRtmp]:
    """nginx-rtmp on spare ports, chosen in the video settings for the test's duration."""
    if (reason := nginx.available()) is not None:
        pytest.skip(reason)
    server = nginx.NginxRtmp(
        root=tmp_path / "nginx",
        callbacks=f"{system.url('gateway')}/webhooks/nginx-rtmp",
        secret=INSECURE_RTMP_CALLBACK_SECRET,
    )
    await asyncio.to_thread(server.start)
    admin = auth(tokens["admin"])
    before = (await gateway.get("/api/live/settings", headers=admin)).json()
    chosen = await gateway.put(
        "/api/live/settings",
        json={"platform": "nginx_rtmp", "config": {
            "ingest_url": server.ingest_url, "hls_base_url": server.hls_base_url}},
        headers=admin,
    )  # fmt: skip
    assert chosen.status_code == 200, chosen.text
    yield server
    restored = {"platform": before["platform"], "config": before["config"]}
    await gateway.put("/api/live/settings", json=restored, headers=admin)
    await asyncio.to_thread(server.stop)


def publish(ingest_url: str, key: str) -> subprocess.Popen:
    """ffmpeg as the encoder: a test picture and a tone, in real time."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
         "-g", "25", "-c:a", "aac", "-f", "flv", f"{ingest_url}/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def eventually_playing(video, timeout_s: float = 30.0) -> float:
    """The video's position once past one second (polled: the page's CSP forbids eval)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (position := await video.evaluate("v => v.currentTime")) <= 1:
        assert asyncio.get_running_loop().time() < deadline, "the video never played"
        await asyncio.sleep(0.2)
    return position


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

    encoder = publish(nginx_rtmp.ingest_url, live["obs"]["stream_key"])
    try:
        await expect(viewer.locator("#live-badge")).to_have_text("LIVE", timeout=15_000)
        video = viewer.locator("#video")
        first = await eventually_playing(video)
        await viewer.wait_for_timeout(2_000)
        assert await video.evaluate("v => v.currentTime") > first + 1
        assert "blob:" in (await video.evaluate("v => v.currentSrc"))  # hls.js, not a fallback
        await screenshot(viewer, "viewer-playing")
    finally:
        encoder.terminate()
        await asyncio.to_thread(encoder.wait, 10)
