"""Real headless Chromium (Debian's) driving the pages the gateway serves, on the e2e system."""

import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

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
