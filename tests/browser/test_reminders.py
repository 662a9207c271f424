"""A scheduled live on the viewer page: the countdown, "Remind me" by e-mail (the confirmation
reaching a real SMTP server), "Add to calendar", in English and French."""

import re
from datetime import timedelta

import httpx
from playwright.async_api import expect

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.conftest import auth, eventually
from tests.e2e.test_notifications_flow import scheduled
from vitrine.mailcatcher import MailCatcher


async def test_a_viewer_sees_the_countdown_and_asks_to_be_reminded(
    new_page, gateway: httpx.AsyncClient, tokens: dict, mail: MailCatcher, screenshot
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(hours=2, minutes=30))
    page = await new_page()
    await page.goto(f"/live/{live_id}")
    await expect(page.locator("#countdown")).to_have_text(
        re.compile(r"^Starts in 2 h (29|30) min$")
    )
    calendar = page.get_by_role("link", name="Add to calendar")
    await expect(calendar).to_have_attribute("href", f"/api/live/streams/{live_id}/calendar.ics")
    ics = await gateway.get(f"/api/live/streams/{live_id}/calendar.ics")
    assert ics.status_code == 200 and "BEGIN:VEVENT" in ics.text

    await page.get_by_label("Your e-mail").fill("browser-viewer@example.com")
    await page.get_by_role("button", name="Remind me").click()
    await expect(page.locator("#remind-feedback")).to_have_text(
        "Almost done: confirm with the link we e-mailed you."
    )
    await screenshot(page, "reminders-scheduled-live")
    await eventually(lambda: mail.to("browser-viewer@example.com"), timeout=20)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_reminder_block_speaks_french_and_is_gone_once_live(
    new_page, gateway: httpx.AsyncClient, tokens: dict
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(minutes=5, seconds=30))
    page = await new_page(locale="fr-FR")
    await page.goto(f"/live/{live_id}")
    await expect(page.locator("#countdown")).to_have_text(
        re.compile(r"^Commence dans 5 min \d\d s$")
    )
    await expect(page.get_by_role("button", name="Me prévenir")).to_be_visible()
    await expect(page.get_by_role("link", name="Ajouter au calendrier")).to_be_visible()
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
    await expect(page.locator("#reminders")).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_admin_sees_how_many_will_be_reminded_and_sends_a_test(
    new_page, gateway: httpx.AsyncClient, tokens: dict, mail: MailCatcher, screenshot
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(hours=3))
    viewer = issue_token(secret=INSECURE_JWT_SECRET, user_id="u-remind", email="fan@example.com")
    subscribed = await gateway.post(
        f"/api/live/streams/{live_id}/reminders", json={}, headers=auth(viewer)
    )
    assert subscribed.status_code == 201
    page = await new_page(token=tokens["admin"])
    await page.goto(f"/admin#/live/{live_id}")
    await expect(page.locator("#rem-subscribers")).to_have_text("1")
    await expect(page.get_by_text("fan@example.com")).to_have_count(0)  # counts only
    await page.get_by_label("Send a test to").fill("owner@example.com")
    await page.get_by_role("button", name="Send the test").click()
    await expect(page.locator("#test-note")).to_have_text("Test sent to owner@example.com.")
    await screenshot(page, "reminders-admin-panel")
    (test,) = mail.to("owner@example.com")
    assert test["Subject"].startswith("[Test] ")
    assert page.errors == []  # type: ignore[attr-defined]
