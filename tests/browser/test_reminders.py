"""A scheduled live on the viewer page: the countdown, "Remind me" by e-mail (the confirmation
reaching a real SMTP server), "Add to calendar", in English and French; the lives to come,
following the shop, and stopping a reminder from the page or a pushed notification."""

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.browser.conftest import PHONE
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


LAPTOP = {"width": 1366, "height": 800}


async def planned(gateway: httpx.AsyncClient, tokens: dict, title: str, in_: timedelta) -> str:
    """A live scheduled `in_` from now, as the admin console makes one."""
    at = (datetime.now(UTC) + in_).isoformat()
    created = await gateway.post(
        "/api/live/streams",
        json={"title": title, "scheduled_at": at},
        headers=auth(tokens["admin"]),
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def subscribers(gateway: httpx.AsyncClient, tokens: dict, live_id: str) -> dict:
    answer = await gateway.get(
        f"/api/live/streams/{live_id}/reminders", headers=auth(tokens["admin"])
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_viewer_page_lists_the_lives_to_come_after_the_live_itself(
    new_page, gateway: httpx.AsyncClient, tokens: dict, screenshot
) -> None:
    shown = await planned(gateway, tokens, "Nouvelle collection", timedelta(minutes=45))
    sooner = await planned(gateway, tokens, "Atelier bijoux", timedelta(minutes=50))
    later = await planned(gateway, tokens, "Ventes privées du soir", timedelta(minutes=80))
    for size, viewport in {"phone": PHONE, "laptop": LAPTOP}.items():
        page = await new_page(viewport=viewport)
        await page.goto(f"/live/{shown}")
        upcoming = page.locator("#upcoming")
        await expect(upcoming.get_by_role("heading", name="Upcoming lives")).to_be_visible()
        links = upcoming.locator("#upcoming-list a")
        first = links.filter(has_text="Atelier bijoux")
        await expect(first).to_have_attribute("href", f"/live/{sooner}")
        await expect(first.locator("time")).to_have_text(re.compile(r"\d{1,2}:\d\d"))
        await expect(links.filter(has_text="Ventes privées du soir")).to_be_visible()
        hrefs = [await link.get_attribute("href") for link in await links.all()]
        assert f"/live/{shown}" not in hrefs  # the live on the page is not listed again
        assert hrefs.index(f"/live/{sooner}") < hrefs.index(f"/live/{later}")
        assert len(hrefs) <= 6
        # After the live's own sections: the video and the featured card come first on a phone.
        block = await upcoming.bounding_box()
        for above in ("#live .stage", "#featured", "#live .chat"):
            box = await page.locator(above).bounding_box()
            assert box and block and box["y"] + box["height"] <= block["y"], above
        await screenshot(page, f"reminders-upcoming-{size}")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_following_the_shop_from_the_page_sends_a_confirmation(
    new_page, gateway: httpx.AsyncClient, tokens: dict, mail: MailCatcher, screenshot
) -> None:
    live_id = await planned(gateway, tokens, "Les essentiels de l'hiver", timedelta(hours=4))
    page = await new_page(locale="fr-FR", viewport=PHONE)
    await page.goto(f"/live/{live_id}")
    follow = page.locator("#upcoming")
    await expect(
        follow.get_by_role("heading", name="Être prévenu(e) de tous les lives")
    ).to_be_visible()
    await follow.get_by_label("Adresse e-mail").fill("shop-follower@example.com")
    await follow.get_by_role("button", name="Suivre la boutique").click()
    await expect(page.locator("#follow-feedback")).to_have_text(
        "C'est presque fait : confirmez avec le lien envoyé par e-mail."
    )
    await expect(follow.get_by_role("button", name="Ne plus me prévenir")).to_have_count(0)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the picture
    await screenshot(page, "reminders-follow-the-shop")
    (confirmation,) = await eventually(lambda: mail.to("shop-follower@example.com"), timeout=20)
    assert "/api/live/reminders/confirm?token=" in confirmation.as_string()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_with_no_live_to_come_the_page_still_offers_to_follow_the_shop(
    new_page, screenshot
) -> None:
    page = await new_page(viewport=PHONE)
    # The system is shared with other tests: here the API lists no live at all.
    await page.route(
        re.compile(r"/api/live/streams(\?.*)?$"),
        lambda route: route.fulfill(json={"items": [], "next_cursor": None}),
    )
    await page.goto("/live")
    await expect(page.locator("#notice")).to_have_text("No live right now. Come back soon!")
    await expect(page.get_by_role("heading", name="Be told of every live")).to_be_visible()
    await expect(page.get_by_role("button", name="Follow the shop")).to_be_visible()
    await expect(page.get_by_role("heading", name="Upcoming lives")).to_be_hidden()
    await screenshot(page, "reminders-no-live")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_signed_in_viewer_reminded_at_their_own_address_can_stop_it(
    new_page, gateway: httpx.AsyncClient, tokens: dict, screenshot
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(hours=2))
    viewer = issue_token(
        secret=INSECURE_JWT_SECRET, user_id="u-stop", name="Chloé", email="chloe@example.com"
    )
    page = await new_page(token=viewer, viewport=PHONE)
    await page.goto(f"/live/{live_id}")
    reminders = page.locator("#reminders")
    await expect(reminders.get_by_label("Your e-mail")).to_have_value("chloe@example.com")
    await reminders.get_by_role("button", name="Remind me").click()
    await expect(page.locator("#remind-feedback")).to_have_text(
        "Done: you will be reminded before it starts."
    )
    assert (await subscribers(gateway, tokens, live_id))["subscribers"] == 1

    await page.reload()  # the page remembers it: "Stop" instead of the form
    await expect(reminders.get_by_text("You will be reminded")).to_be_visible()
    await expect(reminders.get_by_label("Your e-mail")).to_be_hidden()
    await screenshot(page, "reminders-stop")
    await reminders.get_by_role("button", name="Stop").click()
    await expect(page.locator("#remind-feedback")).to_have_text(
        "Done: you will not be reminded any more."
    )
    await expect(reminders.get_by_role("button", name="Remind me")).to_be_visible()
    assert (await subscribers(gateway, tokens, live_id))["subscribers"] == 0

    # Following the shop at one's own address: followed at once, and stopped the same way.
    follow = page.locator("#upcoming")
    followers = (await subscribers(gateway, tokens, live_id))["shop_followers"]
    await expect(follow.get_by_label("E-mail address")).to_have_value("chloe@example.com")
    await follow.get_by_role("button", name="Follow the shop").click()
    await expect(page.locator("#follow-feedback")).to_have_text(
        "Done: you will be told of every live."
    )
    assert (await subscribers(gateway, tokens, live_id))["shop_followers"] == followers + 1
    await follow.get_by_role("button", name="Stop").click()
    await expect(follow.get_by_role("button", name="Follow the shop")).to_be_visible()
    assert (await subscribers(gateway, tokens, live_id))["shop_followers"] == followers
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_stop_action_of_a_pushed_reminder_unsubscribes_without_opening_a_page(
    new_page, gateway: httpx.AsyncClient, tokens: dict, system
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(hours=6))
    viewer = issue_token(secret=INSECURE_JWT_SECRET, user_id="u-push", email="push@example.com")
    subscribed = await gateway.post(
        f"/api/live/streams/{live_id}/reminders", json={}, headers=auth(viewer)
    )
    assert subscribed.status_code == 201, subscribed.text
    token = subscribed.json()["unsubscribe_token"]
    page = await new_page()
    await page.context.grant_permissions(["notifications"])
    await page.goto(f"/live/{live_id}")
    await page.evaluate("navigator.serviceWorker.register('/sw.js').then(() => true)")
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    (worker,) = page.context.service_workers

    # A push as the notifications service sends it (Web Push itself needs a push service: the
    # DevTools protocol hands the payload to the service worker instead).
    base = system.url("gateway")
    payload = {
        "title": "Soldes d'hiver starts in 15 minutes", "body": "Join us", "tag": live_id,
        "url": f"{base}/live/{live_id}", "lang": "en", "unsubscribe_label": "Stop these messages",
        "unsubscribe_url": f"{base}/api/live/reminders/unsubscribe?token={token}",
    }  # fmt: skip
    devtools = await page.context.new_cdp_session(page)
    registrations: list[dict] = []
    devtools.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    await devtools.send("ServiceWorker.enable")
    await eventually(lambda: registrations)
    await devtools.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": base, "registrationId": registrations[0]["registrationId"],
         "data": json.dumps(payload)},
    )  # fmt: skip
    shown = await eventually(
        lambda: worker.evaluate(
            "self.registration.getNotifications()"
            ".then((all) => all.map((n) => ({title: n.title, actions: n.actions})))"
        )
    )
    assert shown[0]["title"] == payload["title"]
    assert [(a["action"], a["title"]) for a in shown[0]["actions"]] == [
        ("unsubscribe", "Stop these messages")
    ]

    # What the service worker does when the action is clicked (a real click needs a desktop).
    await worker.evaluate(
        "self.registration.getNotifications()"
        ".then(([shown]) => notificationClicked(shown, 'unsubscribe'))"
    )
    assert (
        await worker.evaluate("self.registration.getNotifications().then((all) => all.length)") == 0
    )
    assert len(page.context.pages) == 1  # nothing opened
    assert (await subscribers(gateway, tokens, live_id))["subscribers"] == 0
    assert page.errors == []  # type: ignore[attr-defined]
