"""The notifications service through HTTP, over real PostgreSQL and NATS JetStream, sending to a
real SMTP server on loopback: subscribing, double opt-in, the three reminders, unsubscribing,
GDPR export and erasure, bad input."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from nats.js import JetStreamContext

from tests.conftest import auth, eventually
from tests.integration.notifications_support import (
    LEAD,
    PUBLIC,
    address,
    html_of,
    link,
    mail_to,
    running,
    scheduled_live,
    settings_for,
    signed_in,
    text_of,
    token_of,
)
from vitrine.mailcatcher import MailCatcher


@pytest.fixture(scope="module")
async def client(env: dict, smtp: MailCatcher) -> AsyncIterator[httpx.AsyncClient]:
    # A schema of its own: its shop followers must not hear of the end-to-end tests' lives.
    async with running(settings_for(env, smtp, db_schema_prefix="notif_")) as client:
        yield client


async def test_a_signed_in_viewer_is_reminded_in_their_language_and_time_zone(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=LEAD + timedelta(seconds=2))
    email = address()
    answer = await client.post(
        f"/api/live/streams/{live.id}/reminders",
        json={"channel": "email", "language": "en", "time_zone": "America/New_York"},
        headers=signed_in(email),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "confirmed"
    assert email not in answer.text

    (message,) = await mail_to(smtp, email)
    assert message["Subject"] == "“Spring collection” starts in 15 min"
    assert message["Content-Language"] == "en"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC}/api/live/reminders/unsubscribe?token=")
    assert live.scheduled_at is not None
    local = live.scheduled_at.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%H:%M} (America/New_York)" in text_of(message)
    assert f"{PUBLIC}/live/{live.id}" in text_of(message)
    assert f'href="{PUBLIC}/live/{live.id}"' in html_of(message)


async def test_an_anonymous_address_gets_only_a_confirmation_until_it_is_confirmed(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=2))
    email = address()
    answer = await client.post(
        f"/api/live/streams/{live.id}/reminders", json={"email": email, "language": "fr"}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "check_your_inbox"}
    # Asking again sends nothing more (nobody can flood an address with confirmations), and
    # answers the same: nobody learns whether an address is subscribed.
    again = await client.post(f"/api/live/streams/{live.id}/reminders", json={"email": email})
    assert (again.status_code, again.json()) == (202, {"status": "check_your_inbox"})

    (confirmation,) = await mail_to(smtp, email)
    assert confirmation["Subject"] == "Confirmez votre rappel : Spring collection"
    assert "Si vous n'avez rien demandé" in text_of(confirmation)
    await live.start()
    await asyncio.sleep(1.5)
    assert len(smtp.to(email)) == 1, "nothing but the confirmation before it is confirmed"

    page = await client.get(link(confirmation, "/api/live/reminders/confirm"))
    assert page.status_code == 200 and 'method="post"' in page.text  # opening it does nothing
    token = token_of(link(confirmation, "/api/live/reminders/confirm"))
    confirmed = await client.post(f"/api/live/reminders/confirm?token={token}")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"

    _, on_air = await mail_to(smtp, email, 2)
    assert on_air["Subject"] == "« Spring collection » est en direct"
    assert f"{PUBLIC}/live/{live.id}" in text_of(on_air)


async def test_nobody_but_its_owner_learns_whether_an_address_is_subscribed(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from services.notifications import planning

    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=2))
    confirmed, pending, new = address(), address(), address()
    url = f"/api/live/streams/{live.id}/reminders"
    assert (await client.post(url, json={}, headers=signed_in(confirmed))).status_code == 201
    assert (await client.post(url, json={"email": pending})).status_code == 202
    await mail_to(smtp, pending)
    answers = [
        await client.post(url, json={"email": email, "language": "en"}, headers=headers)
        for email in (confirmed, pending, new)
        for headers in ({}, signed_in(address()))
    ]
    assert {(answer.status_code, answer.text) for answer in answers} == {
        (202, '{"status":"check_your_inbox"}')
    }
    # The owner still sees their subscription.
    mine = await client.post(url, json={}, headers=signed_in(confirmed))
    assert (mine.status_code, mine.json()["status"]) == (200, "confirmed")
    await mail_to(smtp, new)
    assert len(smtp.to(pending)) == 1, "sent recently: not again"
    assert not smtp.to(confirmed), "a confirmed address is asked nothing"
    # Long enough after, a still pending address gets its confirmation again.
    monkeypatch.setattr(planning, "CONFIRMATION_RESEND_AFTER", timedelta(0))
    assert (await client.post(url, json={"email": pending})).status_code == 202
    await mail_to(smtp, pending, 2)


async def test_each_reminder_goes_once_however_often_the_events_come(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
    emails = [address() for _ in range(5)]
    for email in emails:
        answer = await client.post(
            f"/api/live/streams/{live.id}/reminders", json={"language": "en"},
            headers=signed_in(email),
        )  # fmt: skip
        assert answer.status_code == 201
    for _ in range(3):  # the same facts again and again, as a redelivery would bring them
        await live.start()
    for email in emails:
        (on_air,) = await mail_to(smtp, email)
        assert on_air["Subject"] == "“Spring collection” is live now"
    await live.end(replay=True)
    await live.end(replay=True)
    for email in emails:
        _, replay = await mail_to(smtp, email, 2)
        assert replay["Subject"] == "The replay of “Spring collection” is ready"
    await asyncio.sleep(1.5)
    assert [len(smtp.to(email)) for email in emails] == [2] * 5
    counts = (await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)).json()
    assert counts["subscribers"] == 5
    assert counts["sent"] == {"live": 5, "replay": 5}
    assert all(email not in str(counts) for email in emails)


async def test_a_rescheduled_live_moves_its_reminder_and_a_deleted_one_sends_none(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    moved = await scheduled_live(client, js, env, admin, in_=timedelta(hours=3))
    deleted = await scheduled_live(client, js, env, admin, in_=LEAD + timedelta(seconds=3))
    email = address()
    for live in (moved, deleted):
        answer = await client.post(
            f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email)
        )
        assert answer.status_code == 201
    await deleted.delete()
    await moved.schedule(datetime.now(UTC) + LEAD + timedelta(seconds=2))
    (message,) = await mail_to(smtp, email)
    assert message["Subject"] == "« Spring collection » commence dans 15 min"
    assert f"/live/{moved.id}" in text_of(message)
    await asyncio.sleep(3)
    assert len(smtp.to(email)) == 1, "nothing about the deleted live"


async def test_one_click_unsubscribe_stops_the_messages(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=LEAD + timedelta(seconds=1))
    email = address()
    await client.post(f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email))
    (message,) = await mail_to(smtp, email)
    unsubscribe = message["List-Unsubscribe"].strip("<>")[len(PUBLIC) :]
    # What a mail client does with List-Unsubscribe-Post (RFC 8058).
    answer = await client.post(
        unsubscribe,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    await live.start()
    await asyncio.sleep(1.5)
    assert len(smtp.to(email)) == 1
    counts = (await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)).json()
    assert counts["subscribers"] == 0
    token = token_of(unsubscribe)
    assert (await client.delete(f"/api/live/reminders/{token}")).status_code == 204
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await client.delete(f"/api/live/reminders/{forged}")).status_code == 404


async def test_following_the_shop_brings_the_lives_to_come(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    email = address()
    answer = await client.post("/api/live/reminders", json={}, headers=signed_in(email))
    assert answer.status_code == 201 and answer.json()["stream_id"] is None
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
    # Also subscribed to the live itself: still one message per live, not two.
    await client.post(f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email))
    await live.start()

    def about_this_live() -> list:
        return [m for m in smtp.to(email) if f"/live/{live.id}" in text_of(m)]

    await eventually(about_this_live)
    await asyncio.sleep(1.5)
    (message,) = about_this_live()
    assert "est en direct" in message["Subject"]


async def test_an_admin_exports_and_erases_an_address(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
    email = address()
    await client.post(f"/api/live/streams/{live.id}/reminders", json={"email": email})
    await client.post("/api/live/reminders", json={"email": email.upper()})
    await mail_to(smtp, email, 2)
    query = {"email": email}
    assert (await client.get("/api/live/reminders", params=query)).status_code == 401
    viewer = auth(tokens["user"])
    forbidden = await client.get("/api/live/reminders", params=query, headers=viewer)
    assert forbidden.status_code == 403

    exported = await client.get("/api/live/reminders", params=query, headers=admin)
    assert exported.status_code == 200
    kept = exported.json()
    assert kept["email"] == email
    assert {s["stream_id"] for s in kept["subscriptions"]} == {str(live.id), None}
    assert all(s["deliveries"][0]["kind"] == "confirm" for s in kept["subscriptions"])

    erased = await client.delete("/api/live/reminders", params=query, headers=admin)
    assert erased.json() == {"subscriptions_deleted": 2}
    again = await client.get("/api/live/reminders", params=query, headers=admin)
    assert again.json()["subscriptions"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address"},
        {"email": "a" * 250 + "@example.com"},
        {"email": "x@example.com", "time_zone": "Mars/Olympus_Mons"},
        {"email": "x@example.com", "time_zone": "../../etc/passwd"},
        {"email": "x@example.com", "language": "de"},
        {"email": "x@example.com", "channel": "sms"},
        {"email": "x@example.com", "surprise": 1},
        {},  # anonymous, no address
    ],
)
async def test_bad_input_is_refused_with_422(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, body: dict
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
    answer = await client.post(f"/api/live/streams/{live.id}/reminders", json=body)
    assert answer.status_code == 422, answer.text
    bad_query = await client.get("/api/live/reminders", params={"email": "nope"}, headers=admin)
    assert bad_query.status_code == 422


async def test_an_unknown_live_or_token_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        f"/api/live/streams/{uuid4()}/reminders", json={"email": "x@example.com"}
    )
    assert answer.status_code == 404
    assert (await client.post("/api/live/reminders/confirm?token=abc.def")).status_code == 404
    assert (await client.delete("/api/live/reminders/nonsense")).status_code == 404


async def test_a_failing_mail_server_is_tried_again_and_a_refused_address_given_up(
    env: dict, js: JetStreamContext, admin: dict
) -> None:
    from vitrine.system import free_port

    refused: dict[str, int] = {}

    def refuse(envelope) -> str | None:
        (to,) = envelope.rcpt_tos
        refused[to] = refused.get(to, 0) + 1
        if to.startswith("gone-"):
            return "550 5.1.1 no such mailbox"
        return "451 4.3.0 try again later" if refused[to] <= 2 else None

    with MailCatcher(port=free_port(), refuse=refuse) as smtp:
        # Its own schema and durable: the module's service must not send these.
        async with running(settings_for(env, smtp, db_schema_prefix="retry_")) as client:
            live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
            flaky, gone = address(), "gone-" + address()
            for email in (flaky, gone):
                await client.post(
                    f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email)
                )
            await live.start()
            await mail_to(smtp, flaky)
            assert refused[flaky] == 3
            await asyncio.sleep(1.5)
            assert refused[gone] == 1, "a permanent refusal is not tried again"
            test = await client.post(
                f"/api/live/streams/{live.id}/reminders/test", headers=admin,
                json={"email": "gone-owner@example.com"},
            )  # fmt: skip
            assert test.json() == {"sent": False, "reason": "SMTP 550"}


def test_unknown_smtp_scheme_stops_the_start(env: dict) -> None:
    from services.notifications.app import create_app
    from services.notifications.settings import NotificationsSettings

    with pytest.raises(ValueError, match="SMTP_URL"):
        create_app(NotificationsSettings(**env, smtp_url="http://mail.example"))


async def test_a_connection_the_mail_server_closed_while_idle_is_replaced(
    env: dict, js: JetStreamContext, admin: dict
) -> None:
    from vitrine.system import free_port

    # The server hangs up on a connection idle for 1 s; the service keeps its connections.
    with MailCatcher(port=free_port(), timeout=1) as smtp:
        async with running(settings_for(env, smtp, db_schema_prefix="idle_")) as client:
            first, second = address(), address()
            for email in (first, second):
                live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
                await client.post(
                    f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email)
                )
                await live.start()
                await mail_to(smtp, email)
                await asyncio.sleep(2)  # past the server's idle timeout
            assert len(smtp.to(first)) == len(smtp.to(second)) == 1


async def test_an_admin_sends_a_test_of_the_reminder_to_one_address(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
    body = {"email": "shop-owner@example.com", "language": "en", "time_zone": "Europe/London"}
    path = f"/api/live/streams/{live.id}/reminders/test"
    assert (await client.post(path, json=body, headers=auth(tokens["user"]))).status_code == 403
    answer = await client.post(path, json=body, headers=admin)
    assert answer.status_code == 200 and answer.json() == {"sent": True, "reason": None}
    (message,) = smtp.to("shop-owner@example.com")  # handed over before the answer
    assert message["Subject"] == "[Test] “Spring collection” starts in 60 min"
    assert "(Europe/London)" in text_of(message)
    counts = (await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)).json()
    assert counts["sent"] == {}, "a test is no reminder: nothing is recorded"
    unknown = await client.post(f"/api/live/streams/{uuid4()}/reminders/test", json=body,
                                headers=admin)  # fmt: skip
    assert unknown.status_code == 404
