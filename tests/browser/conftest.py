"""Real headless Chromium (Debian's) driving the pages the gateway serves, on the e2e system."""

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.conftest import auth
from vitrine.nginx_rtmp import NginxRtmp, unavailable
from vitrine.system import free_port

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
SCREENSHOTS = Path(__file__).with_name("screenshots")  # git-ignored; also kept in pytest's tmp

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def new_page(browser: Browser, system) -> AsyncIterator[NewPage]:
    """Pages in their own browser contexts (own localStorage), signed in with `token` if given."""
    contexts: list[BrowserContext] = []

    async def open_page(
        *, token: str | None = None, locale: str = "en-US", viewport: dict = DESKTOP
    ) -> Page:
        context = await browser.new_context(
            base_url=system.url("gateway"), locale=locale, viewport=viewport
        )
        if token:
            await context.add_init_script(
                f"localStorage.setItem('vitrine.token', {json.dumps(token)})"
            )
        contexts.append(context)
        page = await context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
        return page

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture(scope="session")
def screenshot_dirs(tmp_path_factory) -> list[Path]:
    dirs = [tmp_path_factory.mktemp("screenshots"), SCREENSHOTS]
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
    return dirs


@pytest.fixture
def screenshot(screenshot_dirs: list[Path]) -> Callable[[Page, str], Awaitable[None]]:
    """Save a full-page screenshot under pytest's tmp dir and tests/browser/screenshots/."""

    async def take(page: Page, name: str) -> None:
        image = await page.screenshot(full_page=True)
        for folder in screenshot_dirs:
            (folder / f"{name}.png").write_bytes(image)

    return take


@pytest.fixture
async def nginx_rtmp(system, gateway, tokens) -> AsyncIterator[NginxRtmp]:
    """nginx-rtmp from deploy/nginx-rtmp/ on spare ports, chosen in the video settings for the
    test's duration (a live ends 1 s after its encoder leaves)."""
    if (reason := unavailable()) is not None:
        pytest.skip(reason)
    server = NginxRtmp(
        root=Path(tempfile.mkdtemp(prefix="vitrine-nginx-")),
        callbacks_url=f"{system.url('gateway')}/webhooks",
        secret=INSECURE_RTMP_CALLBACK_SECRET,
        rtmp_port=free_port(),
        http_port=free_port(),
    )
    await asyncio.to_thread(server.start)
    admin = auth(tokens["admin"])
    before = (await gateway.get("/api/live/settings", headers=admin)).json()
    chosen = await gateway.put(
        "/api/live/settings",
        json={"platform": "nginx_rtmp", "config": {
            "ingest_url": server.ingest_url, "hls_base_url": server.hls_base_url,
            "replay_base_url": server.replay_base_url, "control_url": server.control_url,
            "reconnect_grace_s": 1}},
        headers=admin,
    )  # fmt: skip
    assert chosen.status_code == 200, chosen.text
    yield server
    restored = {"platform": before["platform"], "config": before["config"]}
    await gateway.put("/api/live/settings", json=restored, headers=admin)
    await asyncio.to_thread(server.stop)
    shutil.rmtree(server.root, ignore_errors=True)


async def eventually_playing(video, timeout_s: float = 30.0) -> float:
    """The video's position once past one second (polled: the page's CSP forbids eval)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (position := await video.evaluate("v => v.currentTime")) <= 1:
        assert asyncio.get_running_loop().time() < deadline, "the video never played"
        await asyncio.sleep(0.2)
    return position
