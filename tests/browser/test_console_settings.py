"""The console's settings and catalog, in a real browser: each video platform's and each shop's
typed form saves what it loaded unchanged, a number and a secret changed are saved (the secret
never shown back), and a local product is made, changed and deleted — on a phone (in French) and
on a laptop (in English)."""

import re
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE
from tests.conftest import auth
from tests.support.shopify import FakeShopify
from tests.support.woocommerce import FakeShop

LAPTOP = {"width": 1366, "height": 800}
SIZES = {"phone": (PHONE, "fr-FR"), "laptop": (LAPTOP, "en-US")}
SAVED = {"fr-FR": "Configuration enregistrée.", "en-US": "Configuration saved."}

# One typed configuration a platform accepts, with numbers where it takes numbers.
PLATFORMS = {
    "nginx_rtmp": ({"ingest_url": "rtmp://127.0.0.1:1935/live",
                    "hls_base_url": "http://127.0.0.1:8080/hls",
                    "replay_base_url": "http://127.0.0.1:8080/recordings",
                    "control_url": "http://127.0.0.1:8080/control", "reconnect_grace_s": 2.5}, {}),
    "mux": ({"reconnect_window": 45, "latency_mode": "reduced"},
            {"token_id": "mux-token-id-0001", "token_secret": "mux-token-secret-abcd1234",
             "webhook_secret": "mux-webhook-secret-7777"}),
    "aws_ivs": ({"region": "eu-west-1", "latency_mode": "NORMAL", "channel_type": "BASIC",
                 "recording_configuration_arn":
                     "arn:aws:ivs:eu-west-1:123456789012:recording-configuration/AbCd1234",
                 "replay_base_url": "https://d111.cloudfront.net"},
                {"access_key_id": "AKIAEXAMPLE00001234", "secret_access_key": "short"}),
    "restream": ({"playback_url": "https://cdn.example/{playback_id}.m3u8", "client_id": "app-7"},
                 {"stream_key": "re_1234567_abcdefgh"}),
    "custom_rtmp": ({"ingest_url": "srt://ingest.example:9000",
                     "playback_url_template": "https://cdn.example/{playback_id}/index.m3u8"}, {}),
}  # fmt: skip


def shops(woo: FakeShop, shopify: FakeShopify) -> dict[str, dict]:
    """One setting of each catalog source."""
    template = "https://shop.example/checkout?items={items}&coupon={coupon}"
    return {
        "local": {"source": "local", "checkout_url_template": template, "offer_window_h": 36},
        "woocommerce": {"source": "woocommerce", "offer_window_h": 12, "woocommerce": {
            "url": woo.url, "consumer_key": woo.consumer_key,
            "consumer_secret": woo.consumer_secret}},
        "shopify": {"source": "shopify", "shopify": {
            "url": shopify.url, "access_token": "shpat_browser-test-token-0042",
            "storefront_url": "https://shop.example"}},
    }  # fmt: skip


async def put(gateway: httpx.AsyncClient, path: str, body: dict, admin: dict) -> dict:
    """PUT settings through the API; the answer (200, else the test fails)."""
    answer = await gateway.put(path, json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def same(settings: dict) -> dict:
    """What a save must not change: all but the time it was saved."""
    return {k: v for k, v in settings.items() if k not in ("updated_at", "last_refused_publish")}


@pytest.fixture
def shot(screenshot):
    """A full-page screenshot from the top: the sticky header where it belongs."""

    async def take(page: Page, name: str) -> None:
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, name)

    return take


@pytest.fixture
async def admin_settings(gateway: httpx.AsyncClient, tokens: dict) -> AsyncIterator[dict]:
    """The admin's headers; the video and catalog settings put back as they were afterwards."""
    admin = auth(tokens["admin"])
    video = (await gateway.get("/api/live/settings", headers=admin)).json()
    catalog = (await gateway.get("/api/catalog/settings", headers=admin)).json()
    yield admin
    now = (await gateway.get("/api/live/settings", headers=admin)).json()
    added = {name: None for name in now["secrets"] if name not in video["secrets"]}
    back = {"platform": video["platform"], "config": video["config"], "secrets": added}
    await put(gateway, "/api/live/settings", back, admin)
    local = {"source": "local", "offer_window_h": catalog["offer_window_h"]}
    if catalog["checkout_url_template"]:
        local["checkout_url_template"] = catalog["checkout_url_template"]
    await put(gateway, "/api/catalog/settings", local, admin)


async def settings_page(new_page, tokens: dict, size: str) -> Page:
    viewport, locale = SIZES[size]
    page = await new_page(token=tokens["admin"], locale=locale, viewport=viewport)
    await page.goto("/admin#/settings")
    await expect(page.locator("#settings-form")).to_be_visible()
    await expect(page.locator("#shop-form")).to_be_visible()
    return page


async def save(page: Page, form: str, path: str) -> None:
    """Submit `form` and check the API took it (200) and the page says so."""
    async with page.expect_response(
        lambda r: r.url.endswith(path) and r.request.method == "PUT"
    ) as answer:
        await page.locator(f"#{form} button[type=submit]").click()
    assert (await answer.value).status == 200, await (await answer.value).text()
    status = page.locator("#settings-status" if form == "settings-form" else "#shop-status")
    await expect(status).to_have_class(re.compile(r"\bok\b"))


@pytest.mark.parametrize("size", SIZES)
async def test_each_settings_form_saved_unchanged_keeps_its_values(
    size, new_page, gateway, tokens, admin_settings, shot, woocommerce_shop, shopify_shop
) -> None:
    admin = admin_settings
    for platform, (config, secrets) in PLATFORMS.items():
        chosen = {"platform": platform, "config": config, "secrets": secrets}
        before = await put(gateway, "/api/live/settings", chosen, admin)
        page = await settings_page(new_page, tokens, size)
        await expect(page.locator("#platform")).to_have_value(platform)
        for name, value in config.items():
            await expect(page.locator(f"#cfg-{name}")).to_have_value(str(value))
        for name in secrets:
            await expect(page.locator(f"#secret-{name}")).to_have_value("")
            state = page.locator(f"#secret-{name}-state")
            await expect(state).to_have_class(re.compile(r"\bset\b"))
        help_text = page.locator(f"#cfg-{next(iter(config))}-help")
        await expect(help_text).not_to_have_text(re.compile(r"^\s*\w+$"))  # more than the name
        await shot(page, f"console-settings-{platform}-{size}")
        await save(page, "settings-form", "/api/live/settings")
        await expect(page.locator("#settings-status")).to_have_text(SAVED[SIZES[size][1]])
        after = (await gateway.get("/api/live/settings", headers=admin)).json()
        assert same(after) == same(before)
        await page.reload()
        for name, value in config.items():
            await expect(page.locator(f"#cfg-{name}")).to_have_value(str(value))
        assert page.errors == []  # type: ignore[attr-defined]

    for source, chosen in shops(woocommerce_shop, shopify_shop).items():
        before = await put(gateway, "/api/catalog/settings", chosen, admin)
        page = await settings_page(new_page, tokens, size)
        await expect(page.locator("#source")).to_have_value(source)
        await expect(page.locator("#shop-offer_window_h")).to_have_value(
            str(before["offer_window_h"])
        )
        if source != "local":
            await expect(page.locator(f"#{source}-url")).to_have_value(before[source]["url"])
        await shot(page, f"console-shop-{source}-{size}")
        await save(page, "shop-form", "/api/catalog/settings")
        after = (await gateway.get("/api/catalog/settings", headers=admin)).json()
        assert same(after) == same(before)
        assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
async def test_a_number_and_a_secret_changed_are_saved_and_the_secret_stays_hidden(
    size, new_page, gateway, tokens, admin_settings, shot, woocommerce_shop, shopify_shop
) -> None:
    admin = admin_settings
    config, secrets = PLATFORMS["mux"]
    video = {"platform": "mux", "config": config, "secrets": secrets}
    await put(gateway, "/api/live/settings", video, admin)
    woo = shops(woocommerce_shop, shopify_shop)["woocommerce"]
    await put(gateway, "/api/catalog/settings", woo, admin)
    page = await settings_page(new_page, tokens, size)

    new_secret = f"mux-new-secret-{uuid4().hex[:8]}-9876"
    await page.locator("#cfg-reconnect_window").fill("90.5")
    await page.locator("#secret-token_secret").fill(new_secret)
    await page.locator("#secret-webhook_secret-forget").check()
    await save(page, "settings-form", "/api/live/settings")
    video = (await gateway.get("/api/live/settings", headers=admin)).json()
    assert video["config"]["reconnect_window"] == 90.5  # a number, not "90.5"
    assert video["secrets"]["token_secret"].endswith("9876")
    assert new_secret not in str(video)
    assert video["secrets"]["token_id"].endswith(secrets["token_id"][-4:])  # left as it was
    assert "webhook_secret" not in video["secrets"]  # removed
    await expect(page.locator("#secret-webhook_secret-state")).not_to_have_class(
        re.compile(r"\bset\b")
    )
    await expect(page.locator("#secret-token_secret")).to_have_value("")
    await expect(page.locator("#secret-token_secret-state")).to_contain_text("9876")

    await page.locator("#shop-offer_window_h").fill("48")
    await page.locator("#woocommerce-consumer_secret").fill("cs_changed-in-the-browser-5555")
    await save(page, "shop-form", "/api/catalog/settings")
    shop = (await gateway.get("/api/catalog/settings", headers=admin)).json()
    assert shop["offer_window_h"] == 48
    assert shop["woocommerce"]["consumer_secret"].endswith("5555")
    assert shop["woocommerce"]["consumer_key"].endswith(woocommerce_shop.consumer_key[-4:])
    await expect(page.locator("#woocommerce-consumer_secret")).to_have_value("")
    await expect(page.locator("#shop-checkout_url_template-help")).to_contain_text("{items}")
    await shot(page, f"console-settings-changed-{size}")

    await page.reload()
    await expect(page.locator("#cfg-reconnect_window")).to_have_value("90.5")
    await expect(page.locator("#shop-offer_window_h")).to_have_value("48")
    content = await page.content()
    assert new_secret not in content and "changed-in-the-browser" not in content
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
async def test_the_admin_creates_edits_and_deletes_a_local_product(
    size, new_page, gateway, tokens, admin_settings, shot
) -> None:
    admin = admin_settings
    await put(gateway, "/api/catalog/settings", {"source": "local", "offer_window_h": 24}, admin)
    viewport, locale = SIZES[size]
    page = await new_page(token=tokens["admin"], locale=locale, viewport=viewport)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto("/admin#/catalog")
    name = f"Silk scarf {uuid4().hex[:6]}"

    await page.locator("#new-product").click()
    await page.locator("#product-name").fill(name)
    await page.locator("#product-price").fill("25.5")
    await page.locator("#product-currency").fill("EUR")
    await page.locator("#product-stock").fill("3")
    await page.locator("#product-sku").fill(f"SCARF-{name[-6:]}")
    await page.locator("#product-description").fill("Pure silk, hand-rolled edges.")
    await shot(page, f"console-catalog-new-{size}")
    await page.locator("#product-form button[type=submit]").click()
    item = page.locator(".catalog-item", has_text=name)
    await expect(item).to_be_visible()
    await expect(page.locator("#product-form")).to_have_count(0)
    [made] = (
        await gateway.get("/api/catalog/products", params={"search": name}, headers=admin)
    ).json()["items"]
    assert (made["price"], made["currency"], made["stock"]) == ("25.50", "EUR", 3)
    await shot(page, f"console-catalog-list-{size}")

    await item.locator("button").first.click()  # edit
    await expect(page.locator("#product-name")).to_have_value(name)
    await expect(page.locator("#product-price")).to_have_value("25.50")
    await page.locator("#product-price").fill("19.9")
    await page.locator("#product-stock").fill("")
    await shot(page, f"console-catalog-edit-{size}")
    await page.locator("#product-form button[type=submit]").click()
    await expect(page.locator("#product-form")).to_have_count(0)
    changed = (await gateway.get(f"/api/catalog/products/{made['id']}", headers=admin)).json()
    assert (changed["price"], changed["stock"], changed["sku"]) == ("19.90", None, made["sku"])
    await expect(item).to_contain_text("19,90" if locale == "fr-FR" else "19.90")

    await item.locator("button.danger").click()  # delete, confirmed
    await expect(item).to_have_count(0)
    gone = await gateway.get(f"/api/catalog/products/{made['id']}", headers=admin)
    assert gone.status_code == 404
    await expect(page.locator("#catalog-status")).to_contain_text(name)
    await shot(page, f"console-catalog-deleted-{size}")
    assert page.errors == []  # type: ignore[attr-defined]
