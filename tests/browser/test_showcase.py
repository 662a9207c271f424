"""An admin runs a live from the console; viewers see it on the viewer page, in a real browser."""

import re
import time

from playwright.async_api import expect

from tests.browser.conftest import PHONE
from tests.conftest import auth
from tests.e2e.test_products_flow import catalog_product


async def test_an_admin_creates_a_live_and_features_a_product_viewers_see_it_within_a_second(
    new_page, gateway, tokens, screenshot
):
    name = f"Trench {time.monotonic_ns()}"
    await catalog_product(gateway, tokens, name, "189.00")

    admin = await new_page(locale="fr-FR")
    await admin.goto("/admin")
    await admin.get_by_role("button", name="Se connecter").click()  # the dev sign-in, French labels
    dialog = admin.get_by_role("dialog")
    await dialog.get_by_label("Nom affiché").fill("Alice")
    await dialog.get_by_label("Rôle").select_option("admin")
    await dialog.get_by_role("button", name="Se connecter").click()
    await expect(admin.get_by_text("Connecté : Alice")).to_be_visible()

    await admin.get_by_role("link", name="Nouveau Live").first.click()
    await admin.get_by_label("Titre du live").fill("Soirée manteaux")
    await admin.get_by_label("Description").fill("Les nouveautés d'hiver")
    await admin.get_by_role("button", name="Créer le Live").click()
    await expect(admin.locator("#obs-key")).to_have_text(re.compile(r"\S{12,}"))
    await expect(admin.locator("#obs-server")).to_have_text(re.compile(r"^rtmps?://"))
    control = admin.get_by_role("link", name="Contrôle")
    live_id = (await control.get_attribute("href")).rsplit("/", 1)[1]
    await control.click()
    await admin.get_by_role("button", name="Démarrer le Live").click()
    await expect(admin.get_by_role("button", name="Terminer le Live")).to_be_visible()

    viewer = await new_page(locale="en-US", viewport=PHONE)
    await viewer.goto(f"/live/{live_id}")
    await expect(viewer.get_by_role("heading", name="Soirée manteaux")).to_be_visible()
    await expect(viewer.locator("#live-badge")).to_have_text("LIVE")
    await expect(viewer.locator("#featured-card")).to_contain_text("No product featured yet.")

    await admin.get_by_role("searchbox").fill(name)
    await admin.get_by_role("button", name="Rechercher").click()
    await admin.get_by_role("button", name=f"Ajouter — {name}").click()
    feature = admin.get_by_role("button", name=f"Mettre en vedette — {name}")
    await feature.click()
    await expect(viewer.locator("#featured-card h3")).to_have_text(name, timeout=1_000)
    await expect(viewer.locator("#product-list")).to_contain_text(name, timeout=1_000)
    # The admin's control room counts the audience (presence is synced every second).
    await expect(admin.locator("#fig-current")).to_have_text("2", timeout=10_000)

    await viewer.get_by_role("button", name="Add to cart").first.click()
    await expect(viewer.locator("#cart-status")).to_have_text("Added to cart ✓")
    session = await viewer.evaluate("localStorage.getItem('vitrine.session')")
    cart = (await gateway.get(f"/api/live/cart?session_id={session}")).json()
    assert [(line["name"], line["quantity"]) for line in cart["lines"]] == [(name, 1)]
    stored = await gateway.get(f"/api/live/streams/{live_id}", headers=auth(tokens["admin"]))
    assert stored.json()["featured_product"]["name"] == name
    # The control room's figures come from analytics (refreshed every 5 s), with a CSV export.
    await expect(admin.locator("#fig-carts")).to_have_text("1", timeout=15_000)
    async with admin.expect_download() as download:
        await admin.locator("#export-csv").click()
    assert (await (await download.value).path()).read_text().startswith("minute,viewers")

    await screenshot(viewer, "viewer-phone")
    await screenshot(admin, "admin-control")
    assert admin.errors == [] and viewer.errors == []  # type: ignore[attr-defined]


async def test_the_dev_sign_in_exists_outside_production_only(gateway):
    answer = await gateway.post("/dev/sign-in", json={"name": "Zoé", "role": "moderator"})
    assert answer.status_code == 200
    me = await gateway.get("/api/live/settings", headers=auth(answer.json()["token"]))
    assert me.status_code == 403  # a moderator, not an admin
