"""The notifications service's rules of who gets what, over real PostgreSQL, NATS JetStream and
SMTP: a live unsubscribed from stays so though the shop is followed, a live moved after its
reminder went out gets one for its new time, an address gets few confirmations whoever asks,
and a failing mail server is tried for as long as the message holds, not a number of times."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nats.js import JetStreamContext

from tests.conftest import eventually
from tests.integration.notifications_support import (
    LEAD,
    address,
    mail_to,
    running,
    scheduled_live,
    settings_for,
    signed_in,
    text_of,
)
from vitrine.mailcatcher import MailCatcher
from vitrine.system import free_port


@pytest.fixture(scope="module")
async def client(env: dict, smtp: MailCatcher) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings_for(env, smtp, db_schema_prefix="rules_")) as client:
        yield client


def about(smtp: MailCatcher, email: str, live_id: object) -> list:
    return [message for message in smtp.to(email) if f"/live/{live_id}" in text_of(message)]


async def test_a_live_unsubscribed_from_stays_so_though_the_shop_is_followed(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    email = address()
    me = signed_in(email)
    assert (await client.post("/api/live/reminders", json={}, headers=me)).status_code == 201
    # Both announced after the follow (its "starts soon" planned for the follower first), far
    # enough ahead that nothing goes before the unsubscription, then brought close.
    left = await scheduled_live(client, js, env, admin, in_=timedelta(hours=2))
    other = await scheduled_live(client, js, env, admin, in_=timedelta(hours=2))
    mine = await client.post(f"/api/live/streams/{left.id}/reminders", json={}, headers=me)
    assert mine.status_code == 201, mine.text
    token = mine.json()["unsubscribe_token"]  # its owner may unsubscribe from the page
    assert (await client.delete(f"/api/live/reminders/{token}")).status_code == 204

    kept = (await client.get("/api/live/reminders", params={"email": email}, headers=admin)).json()
    planned = [one for sub in kept["subscriptions"] for one in sub["deliveries"]]
    assert [one for one in planned if one["stream_id"] == str(left.id)] == [], "nothing left"

    for live in (left, other):  # plans both again, "starts soon" due in 2 s
        await live.schedule(datetime.now(UTC) + LEAD + timedelta(seconds=2))
    # The follower hears of the other live: by then, of this one too if at all.
    await eventually_about(smtp, email, other.id)
    await asyncio.sleep(1)
    assert about(smtp, email, left.id) == [], "unsubscribed from that live"
    await left.start()
    await other.start()
    await eventually(lambda: len(about(smtp, email, other.id)) == 2)
    await asyncio.sleep(1)
    assert about(smtp, email, left.id) == [], "nor its we're live"

    # Asking for that live again lifts it: it is on air, so "we're live" now.
    again = await client.post(f"/api/live/streams/{left.id}/reminders", json={}, headers=me)
    assert again.status_code == 201, again.text
    await eventually_about(smtp, email, left.id)


async def eventually_about(smtp: MailCatcher, email: str, live_id: object) -> None:
    for _ in range(200):
        if about(smtp, email, live_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message about {live_id}")


async def test_a_live_moved_after_its_reminder_went_gets_one_for_its_new_time(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    live = await scheduled_live(client, js, env, admin, in_=LEAD + timedelta(seconds=1))
    email = address()
    answer = await client.post(
        f"/api/live/streams/{live.id}/reminders", json={"language": "en"}, headers=signed_in(email)
    )
    assert answer.status_code == 201
    (first,) = await mail_to(smtp, email)
    assert first["Subject"] == "“Spring collection” starts in 15 min"

    await live.schedule(datetime.now(UTC) + LEAD + timedelta(seconds=2))  # put back a little
    _, second = await mail_to(smtp, email, 2)
    assert second["Subject"] == "“Spring collection” starts in 15 min"
    assert first["Date"] != second["Date"] or first["Message-ID"] != second["Message-ID"]
    await live.publish_title_change("Spring collection")  # the same time: nothing again
    await asyncio.sleep(1.5)
    assert len(smtp.to(email)) == 2


async def test_an_address_gets_three_confirmations_a_day_whoever_asks_for_how_many_lives(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, smtp: MailCatcher
) -> None:
    victim = address()
    lives = [await scheduled_live(client, js, env, admin, in_=timedelta(hours=3)) for _ in range(5)]
    for live in lives:
        answer = await client.post(f"/api/live/streams/{live.id}/reminders", json={"email": victim})
        assert (answer.status_code, answer.json()) == (202, {"status": "check_your_inbox"})
    followed = await client.post("/api/live/reminders", json={"email": victim})
    assert followed.status_code == 202
    await mail_to(smtp, victim, 3)
    await asyncio.sleep(1.5)
    assert len(smtp.to(victim)) == 3, "the address's budget for the day"
    # Its owner, signed in, needs no confirmation: reminded all the same.
    mine = await client.post(
        f"/api/live/streams/{lives[-1].id}/reminders", json={}, headers=signed_in(victim)
    )
    assert (mine.status_code, mine.json()["status"]) == (200, "confirmed")
    kept = (await client.get("/api/live/reminders", params={"email": victim}, headers=admin)).json()
    assert kept["confirmations_sent_lately"] == 3


async def test_a_failing_mail_server_is_tried_while_the_message_holds_then_given_up(
    env: dict, js: JetStreamContext, admin: dict
) -> None:
    attempts: dict[str, int] = {}

    def refuse(envelope) -> str | None:
        (to,) = envelope.rcpt_tos
        attempts[to] = attempts.get(to, 0) + 1
        if to.startswith("down-") or attempts[to] <= 8:
            return "451 4.3.0 try again later"
        return None

    with MailCatcher(port=free_port(), refuse=refuse) as smtp:
        settings = settings_for(
            env, smtp, db_schema_prefix="giveup_", send_retry_base_s=0.05,
            send_retry_max_delay_s=0.2, send_give_up_after_s=4,
        )  # fmt: skip
        async with running(settings) as client:
            live = await scheduled_live(client, js, env, admin, in_=timedelta(hours=1))
            flaky, down = address(), "down-" + address()
            for email in (flaky, down):
                await client.post(
                    f"/api/live/streams/{live.id}/reminders", json={}, headers=signed_in(email)
                )
            await live.start()
            await mail_to(smtp, flaky)
            assert attempts[flaky] == 9, "more attempts than a fixed count would have allowed"

            async def given_up() -> bool:
                kept = await client.get("/api/live/reminders", params={"email": down},
                                        headers=admin)  # fmt: skip
                (subscription,) = kept.json()["subscriptions"]
                sent = {one["kind"]: one["status"] for one in subscription["deliveries"]}
                return sent["live"] == "failed"

            for _ in range(100):
                if await given_up():
                    break
                await asyncio.sleep(0.1)
            assert await given_up()
            tried = attempts[down]
            assert tried > 9, "tried all along the window"
            await asyncio.sleep(0.6)
            assert attempts[down] == tried, "then no more"
