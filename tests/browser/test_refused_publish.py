"""« Le stream ne démarre pas »: a publish nginx-rtmp refused is shown to the admin, on the live
whose key it was and in the settings, in the console's language."""

import re

from playwright.async_api import expect

from tests.conftest import auth
from tests.support.encoder import publishing


async def test_the_admin_sees_why_an_encoder_was_refused(
    nginx_rtmp, new_page, gateway, tokens, screenshot
):
    admin = auth(tokens["admin"])
    live = (await gateway.post("/api/live/streams", json={"title": "Fini"}, headers=admin)).json()
    for verb in ("start", "end"):
        moved = await gateway.post(f"/api/live/streams/{live['id']}/{verb}", headers=admin)
        assert moved.status_code == 200, moved.text
    async with publishing(f"{nginx_rtmp.ingest_url}/{live['obs']['stream_key']}") as encoder:
        assert await encoder.exited(20) != 0  # the live is over: its key no longer publishes

    page = await new_page(token=tokens["admin"], locale="fr-FR")
    await page.goto(f"/admin#/live/{live['id']}")
    tail = live["stream_key"][-4:]
    shown = re.compile(rf"Dernière publication refusée : clé …{tail}, .*\d, live terminé")
    await expect(page.locator("#refused-publish")).to_have_text(shown)

    async with publishing(f"{nginx_rtmp.ingest_url}/live_not-a-key-9876") as encoder:
        assert await encoder.exited(20) != 0
    await page.goto("/admin#/settings")
    await expect(page.locator("#refused-publish")).to_have_text(
        re.compile(r"Dernière publication refusée : clé …9876, .*\d, clé inconnue")
    )
    await expect(page.get_by_label("Plateforme vidéo")).to_have_value("nginx_rtmp")
    await screenshot(page, "admin-settings-refused")
    assert page.errors == []  # type: ignore[attr-defined]
