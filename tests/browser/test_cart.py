"""The viewer's cart on the viewer page, in Chromium against the whole system: adding from a live,
the drawer (struck prices, quantities, removal, checkout link), kept across a reload, sold-out
products, stock pushed live, and the cart claimed on sign-in."""

import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE
from tests.conftest import auth, eventually, on_air

LAPTOP = {"width": 1366, "height": 800}
CHECKOUT_TEMPLATE = "https://shop.example/checkout?items={items}"

# Product pictures, served locally (the machine reaches no CDN): a shape on a colour.
PICTURES = {
    "coat": ("#d9c6a5", "#6b4f2a", "M34 22h32l8 14-8 6v38H34V42l-8-6z"),
    "scarf": ("#f3d2d2", "#b3261e", "M30 24h40v14H56v40H44V38H30z"),
    "boots": ("#d6dbe6", "#2f3b52", "M36 20h16v40h22v16H36z"),
}


def picture(background: str, ink: str, path: str) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        f'<rect width="100" height="100" fill="{background}"/><path d="{path}" fill="{ink}"/></svg>'
    ).encode()


class _Pictures(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = PICTURES.get(self.path.strip("/").removesuffix(".svg"))
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "image/svg+xml")
        self.end_headers()
        if found:
            self.wfile.write(picture(*found))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
async def with_checkout(gateway, tokens) -> AsyncIterator[dict]:
    """The local catalog with a checkout link template for the test (the admin's headers)."""
    admin = auth(tokens["admin"])
    with_template = {"source": "local", "checkout_url_template": CHECKOUT_TEMPLATE}
    settings = await gateway.put("/api/catalog/settings", json=with_template, headers=admin)
    assert settings.status_code == 200, settings.text
    yield admin
    await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def product(gateway, admin: dict, name: str, price: str, stock: int, image: str) -> dict:
    created = await gateway.post(
        "/api/catalog/products",
        json={"name": name, "price": price, "currency": "EUR", "stock": stock, "images": [image]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    return created.json()


async def live_with_products(
    gateway, admin: dict, pictures: str, *, started: bool = True
) -> tuple[str, dict[str, dict]]:
    """A live on air (or, `started` False, scheduled) showing a coat and a scarf at live prices
    (few scarves left) and sold-out boots."""
    tag = time.monotonic_ns() % 10_000
    live = await gateway.post("/api/live/streams", json={"title": "Soirée hiver"}, headers=admin)
    live_id = live.json()["id"]
    made = {
        "coat": await product(gateway, admin, f"Manteau laine {tag}", "189.00", 10,
                              f"{pictures}/coat.svg"),
        "scarf": await product(gateway, admin, f"Écharpe mérinos {tag}", "49.90", 3,
                               f"{pictures}/scarf.svg"),
        "boots": await product(gateway, admin, f"Bottines {tag}", "99.00", 0,
                               f"{pictures}/boots.svg"),
    }  # fmt: skip
    for key, special in (("coat", "149.00"), ("scarf", "39.90"), ("boots", None)):
        body = {"product_id": made[key]["id"], "is_featured": key == "coat"}
        if special:
            body["special_price"] = special
        added = await gateway.post(
            f"/api/live/streams/{live_id}/products", json=body, headers=admin
        )
        assert added.status_code in (200, 201), added.text
    if started:
        await on_air(gateway, admin, live_id)
    return live_id, made


async def view(page: Page, screenshot_dirs: list[Path], name: str) -> None:
    """What the viewer sees now (the viewport: the drawer covers it)."""
    image = await page.screenshot(animations="disabled")  # the drawer in place, not sliding
    for folder in screenshot_dirs:
        (folder / f"{name}.png").write_bytes(image)


async def within_viewport(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= size["width"]


async def test_a_viewer_fills_the_cart_from_a_live_changes_it_and_finds_it_after_a_reload(
    new_page, gateway, with_checkout, screenshot, screenshot_dirs, pictures
):
    admin = with_checkout
    live_id, made = await live_with_products(gateway, admin, pictures)
    coat, scarf, boots = made["coat"]["name"], made["scarf"]["name"], made["boots"]["name"]

    viewer = await new_page(locale="fr-FR", viewport=PHONE)
    await viewer.goto(f"/live/{live_id}")
    await expect(viewer.get_by_role("heading", name="Soirée hiver")).to_be_visible()
    await within_viewport(viewer, "#cart-button")
    products = viewer.locator("#product-list")
    # Sold out: said on the button, which cannot be pressed; few left: said beside the price.
    sold_out = products.get_by_role("button", name=f"Épuisé — {boots}")
    await expect(sold_out).to_be_disabled()
    await expect(products.locator("li", has_text=scarf)).to_contain_text("Plus que 3")
    await screenshot(viewer, "cart-phone-live")

    await products.get_by_role("button", name=f"Ajouter au panier — {coat}").click()
    await expect(products.locator("li", has_text=coat)).to_contain_text("Ajouté au panier ✓")
    await expect(viewer.locator("#cart-status")).to_be_hidden()  # said where it was pressed
    await products.get_by_role("button", name=f"Ajouter au panier — {scarf}").click()
    await expect(products.locator("li", has_text=scarf)).to_contain_text("Ajouté au panier ✓")
    await expect(viewer.locator("#cart-count")).to_have_text("2")
    await view(viewer, screenshot_dirs, "cart-phone-added")

    cart_button = viewer.get_by_role("button", name="Panier : 2 article(s)")
    await cart_button.click()
    drawer = viewer.get_by_role("dialog", name="Votre panier")
    await expect(drawer).to_be_visible()
    await expect(drawer.get_by_role("button", name="Fermer le panier")).to_be_focused()
    lines = drawer.locator(".cart-line")
    await expect(lines).to_have_count(2)
    await expect(lines.locator(".cart-line-name")).to_have_text([coat, scarf])
    await expect(lines.locator("del")).to_have_text(["189,00 €", "49,90 €"])
    await expect(lines.locator(".price strong")).to_have_text(["149,00 €", "39,90 €"])
    await expect(drawer.locator("#cart-total")).to_have_text("188,90 €")
    await view(viewer, screenshot_dirs, "cart-phone-drawer")

    await drawer.get_by_role("button", name=f"Augmenter la quantité de {coat}").click()
    await expect(lines.first.locator("output")).to_have_text("2")
    await expect(drawer.locator("#cart-total")).to_have_text("337,90 €")
    await expect(viewer.locator("#cart-count")).to_have_text("3")
    # The focus stays on the button pressed, though the line was drawn again.
    await expect(
        drawer.get_by_role("button", name=f"Augmenter la quantité de {coat}")
    ).to_be_focused()
    await drawer.get_by_role("button", name=f"Retirer {scarf} du panier").click()
    await expect(lines).to_have_count(1)
    await expect(drawer.locator("#cart-total")).to_have_text("298,00 €")
    await viewer.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()
    await expect(viewer.locator("#cart-button")).to_be_focused()

    # The stock changes in the shop: the card follows at once, sold out then.
    changed = await gateway.put(
        f"/api/catalog/products/{made['scarf']['id']}", json={"stock": 0}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    await expect(products.get_by_role("button", name=f"Épuisé — {scarf}")).to_be_disabled()

    await viewer.reload()
    await expect(viewer.locator("#cart-count")).to_have_text("2")
    await viewer.get_by_role("button", name="Panier : 2 article(s)").click()
    await expect(lines).to_have_count(1)
    await expect(lines.locator("output")).to_have_text("2")
    session = await viewer.evaluate("localStorage.getItem('vitrine.session')")
    cart = (await gateway.get("/api/live/cart", params={"session_id": session})).json()
    assert [(line["name"], line["quantity"]) for line in cart["lines"]] == [(coat, 2)]
    assert cart["checkout_url"] == f"https://shop.example/checkout?items={made['coat']['id']}:2"
    checkout = drawer.get_by_role("link", name="Passer commande")
    await expect(checkout).to_have_attribute("href", cart["checkout_url"])
    assert not [line for line in cart["lines"] if line["name"] == boots]
    await view(viewer, screenshot_dirs, "cart-phone-drawer-after-reload")

    # A wide screen, in English: the drawer beside the live; then the viewer signs in and
    # the cart becomes theirs.
    laptop = await new_page(locale="en-US", viewport=LAPTOP)
    await laptop.goto(f"/live/{live_id}")
    await within_viewport(laptop, "#cart-button")
    await laptop.locator("#featured-card").get_by_role("button", name="Add to cart").click()
    await expect(laptop.locator("#cart-status")).to_have_text("Added to cart ✓")
    await expect(laptop.locator("#product-list")).not_to_contain_text("Added to cart ✓")
    await laptop.get_by_role("button", name="Cart: 1 item(s)").click()
    wide = laptop.get_by_role("dialog", name="Your cart")
    await expect(wide.locator(".cart-line")).to_have_count(1)
    await view(laptop, screenshot_dirs, "cart-laptop-drawer")
    await wide.get_by_role("button", name="Close the cart").click()
    await screenshot(laptop, "cart-laptop-live")

    await laptop.get_by_role("button", name="Sign in").click()
    signin = laptop.get_by_role("dialog", name="Sign in")
    await signin.get_by_label("Display name").fill("Nina")
    await signin.get_by_role("button", name="Sign in").click()
    await expect(laptop.get_by_text("Signed in: Nina")).to_be_visible()
    token = await laptop.evaluate("localStorage.getItem('vitrine.token')")

    async def users_cart() -> list:
        cart = (await gateway.get("/api/live/cart", headers=auth(token))).json()
        return [(line["name"], line["quantity"]) for line in cart["lines"]]

    assert await eventually(users_cart) == [(coat, 1)]
    await expect(laptop.locator("#cart-count")).to_have_text("1")
    anonymous = await laptop.evaluate("localStorage.getItem('vitrine.session')")
    left = (await gateway.get("/api/live/cart", params={"session_id": anonymous})).json()
    assert left["lines"] == []

    # Without a checkout, the drawer says so and its button cannot be pressed.
    await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)
    await viewer.reload()
    await viewer.get_by_role("button", name=re.compile(r"^Panier : 2")).click()
    await expect(drawer.get_by_role("button", name="Passer commande")).to_be_disabled()
    await expect(drawer).to_contain_text("pas encore de paiement en ligne")
    await expect(drawer.get_by_role("link", name="Passer commande")).to_have_count(0)
    await view(viewer, screenshot_dirs, "cart-phone-no-checkout")
    assert viewer.errors == [] and laptop.errors == []  # type: ignore[attr-defined]


async def test_before_the_live_the_cart_charges_the_catalog_price_and_the_live_price_from_its_start(
    new_page, gateway, with_checkout, screenshot_dirs, pictures
):
    admin = with_checkout
    live_id, made = await live_with_products(gateway, admin, pictures, started=False)
    coat = made["coat"]["name"]
    viewer = await new_page(locale="fr-FR", viewport=PHONE)
    await viewer.goto(f"/live/{live_id}")
    card = viewer.locator("#product-list li", has_text=coat)
    # Announced, not given: the shop holds the live's code from its start only.
    await expect(card.locator(".price")).to_have_text("189,00 €149,00 € pendant le live")
    await expect(card.locator("del")).to_have_count(0)
    await card.get_by_role("button", name=f"Ajouter au panier — {coat}").click()
    await expect(card).to_contain_text("Ajouté au panier ✓")
    await viewer.get_by_role("button", name="Panier : 1 article(s)").click()
    drawer = viewer.get_by_role("dialog", name="Votre panier")
    await expect(drawer.locator("#cart-total")).to_have_text("189,00 €")
    await view(viewer, screenshot_dirs, "cart-phone-before-the-live")

    # The live starts: the card gives the live price and the open cart follows, unasked.
    await on_air(gateway, admin, live_id)
    await expect(card.locator("del")).to_have_text("189,00 €")
    await expect(card.locator(".price strong")).to_have_text("149,00 €")
    await expect(drawer.locator("#cart-total")).to_have_text("149,00 €")
    await expect(drawer.locator(".cart-line del")).to_have_text("189,00 €")
    await view(viewer, screenshot_dirs, "cart-phone-live-started")
    assert viewer.errors == []  # type: ignore[attr-defined]


async def test_the_console_says_when_viewers_have_no_checkout(new_page, gateway, tokens):
    admin = auth(tokens["admin"])
    page = await new_page(token=tokens["admin"], locale="fr-FR")
    try:
        await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)
        await page.goto("/admin")
        await expect(page.locator("#no-checkout")).to_contain_text("Pas encore de paiement")
        with_checkout = {"source": "local", "checkout_url_template": CHECKOUT_TEMPLATE}
        await gateway.put("/api/catalog/settings", json=with_checkout, headers=admin)
        await page.reload()
        await expect(page.get_by_role("heading", name="Lives")).to_be_visible()
        await expect(page.locator("#no-checkout")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def test_the_cart_routes_answer_through_the_gateway(gateway, tokens, pictures):
    admin = auth(tokens["admin"])
    live_id, made = await live_with_products(gateway, admin, pictures)
    session = "browser-" + "0" * 16
    body = {"stream_id": live_id, "product_id": made["coat"]["id"], "session_id": session}
    added = await gateway.post("/api/live/cart/items", json={**body, "quantity": 1})
    assert added.status_code == 201, added.text
    refused = await gateway.post(
        "/api/live/cart/items", json={**body, "product_id": made["boots"]["id"], "quantity": 1}
    )
    assert (refused.status_code, refused.json()) == (409, {"detail": "sold out"})
    changed = await gateway.put("/api/live/cart/items", json={**body, "quantity": 3})
    assert (changed.status_code, changed.json()["items"]) == (200, 3)
    assert (
        await gateway.post("/api/live/cart/claim", json={"session_id": session})
    ).status_code == 401
    removed = await gateway.delete(
        f"/api/live/cart/items/{live_id}/{made['coat']['id']}", params={"session_id": session}
    )
    assert (removed.status_code, removed.json()["lines"]) == (200, [])
