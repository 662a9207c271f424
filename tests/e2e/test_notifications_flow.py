"""Reminders through the gateway, with the whole system running and a real SMTP server: a
signed-in viewer is reminded at once, an anonymous address after confirming, the admin sees
only counts, and one-click unsubscribe and GDPR erasure work from outside."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from icalendar import Calendar

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from tests.conftest import auth, eventually
from vitrine.mailcatcher import MailCatcher


def viewer_with(email: str) -> dict[str, str]:
    token = issue_token(secret=INSECURE_JWT_SECRET, user_id=f"u-{email}", email=email)
    return auth(token)


async def scheduled(gateway: httpx.AsyncClient, tokens: dict, in_: timedelta) -> str:
    admin = auth(tokens["admin"])
    at = (datetime.now(UTC) + in_).isoformat()
    created = await gateway.post(
        "/api/live/streams", json={"title": "Soldes d'hiver", "scheduled_at": at}, headers=admin
    )
    assert created.status_code == 201, created.text
    live_id = created.json()["id"]

    async def notifications_knows_it() -> bool:
        answer = await gateway.get(f"/api/live/streams/{live_id}/reminders", headers=admin)
        return answer.status_code == 200

    await eventually(notifications_knows_it, timeout=20)
    return live_id


def texts(mail: MailCatcher, email: str) -> list[str]:
    return [m.get_body(preferencelist=("plain",)).get_content() for m in mail.to(email)]  # type: ignore[union-attr]


async def test_reminders_from_subscribing_to_going_live(
    gateway: httpx.AsyncClient, tokens: dict, mail: MailCatcher
) -> None:
    admin = auth(tokens["admin"])
    live_id = await scheduled(gateway, tokens, timedelta(minutes=15, seconds=3))
    signed_in = f"e2e-{secrets.token_hex(4)}@example.com"
    anonymous = f"e2e-{secrets.token_hex(4)}@example.com"

    mine = await gateway.post(
        f"/api/live/streams/{live_id}/reminders", json={"language": "en"},
        headers=viewer_with(signed_in),
    )  # fmt: skip
    assert mine.status_code == 201, mine.text
    assert mine.json()["status"] == "confirmed"
    theirs = await gateway.post(f"/api/live/streams/{live_id}/reminders", json={"email": anonymous})
    assert theirs.status_code == 202 and theirs.json() == {"status": "check_your_inbox"}
    assert anonymous not in theirs.text

    await eventually(lambda: mail.to(signed_in) and mail.to(anonymous), timeout=30)
    assert mail.to(signed_in)[0]["Subject"] == "“Soldes d'hiver” starts in 15 min"
    confirm = next(word for word in texts(mail, anonymous)[0].split() if "confirm?token=" in word)
    path = confirm[confirm.index("/api/") :]
    page = await gateway.get(path)  # a page with one button: opening the link does nothing
    assert page.status_code == 200 and 'method="post"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"  # the token stays here
    done = await gateway.post(path)
    assert done.status_code == 200 and done.json()["status"] == "confirmed"

    # Confirmed within the lead time: "starts in 15 min" goes at once.
    await eventually(lambda: len(mail.to(anonymous)) == 2, timeout=20)
    assert "commence dans" in mail.to(anonymous)[1]["Subject"]
    counts = (await gateway.get(f"/api/live/streams/{live_id}/reminders", headers=admin)).json()
    assert counts["subscribers"] == 2
    assert counts["sent"] == {"confirm": 1, "starting_soon": 2}
    forbidden = await gateway.get(
        f"/api/live/streams/{live_id}/reminders", headers=auth(tokens["user"])
    )
    assert forbidden.status_code == 403

    started = await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
    assert started.status_code == 200, started.text
    await eventually(lambda: len(mail.to(signed_in)) == 2 and len(mail.to(anonymous)) == 3)
    assert "est en direct" in mail.to(anonymous)[2]["Subject"]
    assert f"/live/{live_id}" in texts(mail, anonymous)[2]

    unsubscribe = mail.to(anonymous)[2]["List-Unsubscribe"].strip("<>")
    one_click = await gateway.post(
        unsubscribe[unsubscribe.index("/api/") :],
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    by_user = {"user_id": f"u-{signed_in}"}  # a GDPR request may name the user instead
    kept = await gateway.get("/api/live/reminders", params=by_user, headers=admin)
    assert kept.status_code == 200, kept.text
    assert [one["email"] for one in kept.json()["subscriptions"]] == [signed_in]
    erased = await gateway.delete("/api/live/reminders", params={"email": signed_in}, headers=admin)
    assert erased.json() == {"subscriptions_deleted": 1}
    counts = (await gateway.get(f"/api/live/streams/{live_id}/reminders", headers=admin)).json()
    assert counts["subscribers"] == 0


async def test_a_live_and_the_shop_feed_as_calendars(gateway: httpx.AsyncClient, tokens: dict):
    live_id = await scheduled(gateway, tokens, timedelta(days=1))
    answer = await gateway.get(f"/api/live/streams/{live_id}/calendar.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    assert answer.headers["content-disposition"] == f'inline; filename="live-{live_id}.ics"'
    (event,) = Calendar.from_ical(answer.content).walk("VEVENT")
    assert str(event["URL"]).endswith(f"/live/{live_id}")
    feed = await gateway.get("/api/live/calendar.ics")
    assert feed.status_code == 200
    assert live_id in feed.text
    missing = await gateway.get(f"/api/live/streams/{uuid.uuid4()}/calendar.ics")
    assert missing.status_code == 404


async def test_the_web_push_key_is_public(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.get("/api/live/push/public-key")
    assert answer.status_code == 200  # a development key derived from VITRINE_SECRET_KEY
    assert len(answer.json()["public_key"]) == 87  # 65 bytes, base64url
