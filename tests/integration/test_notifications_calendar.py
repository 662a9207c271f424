"""Calendars from the notifications service, parsed back with icalendar: a live's event keeps
its UID and bumps its SEQUENCE when it moves; the shop's feed lists the lives to come."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from icalendar import Calendar
from nats.js import JetStreamContext

from tests.conftest import eventually
from tests.integration.notifications_support import PUBLIC, Live, known, running, settings_for
from vitrine.mailcatcher import MailCatcher


@pytest.fixture(scope="module")
async def client(env: dict, smtp: MailCatcher) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings_for(env, smtp, db_schema_prefix="ics_")) as client:
        yield client


async def event_of(client: httpx.AsyncClient, live: Live):
    answer = await client.get(f"/api/live/streams/{live.id}/calendar.ics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    (event,) = Calendar.from_ical(answer.content).walk("VEVENT")
    return event


async def test_a_live_keeps_its_uid_and_bumps_its_sequence_when_it_moves(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    live = Live(js, env, title="Nouveautés; printemps, été")
    first_time = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    await live.schedule(first_time)
    await known(client, live, admin)
    event = await event_of(client, live)
    assert event["SUMMARY"] == "Nouveautés; printemps, été"
    assert event.decoded("DTSTART") == first_time
    assert event.decoded("DTEND") == first_time + timedelta(minutes=60)
    assert str(event["URL"]) == f"{PUBLIC}/live/{live.id}"
    assert int(event["SEQUENCE"]) == 0
    uid = str(event["UID"])

    moved_time = first_time + timedelta(hours=3)
    await live.schedule(moved_time)

    async def moved():
        return (await event_of(client, live)).decoded("DTSTART") == moved_time

    await eventually(moved)
    event = await event_of(client, live)
    assert str(event["UID"]) == uid
    assert int(event["SEQUENCE"]) == 1
    await live.publish_title_change("Nouveautés")
    await eventually(lambda: _summary(client, live, "Nouveautés"))
    assert int((await event_of(client, live))["SEQUENCE"]) == 1, "only a new time bumps it"


async def _summary(client: httpx.AsyncClient, live: Live, title: str) -> bool:
    return (await event_of(client, live))["SUMMARY"] == title


async def test_the_shop_feed_lists_the_lives_to_come_and_not_the_deleted(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    coming, deleted, untimed = Live(js, env, "Coming"), Live(js, env, "Gone"), Live(js, env)
    await coming.schedule(datetime.now(UTC) + timedelta(days=1))
    await deleted.schedule(datetime.now(UTC) + timedelta(days=1))
    await untimed.schedule(None)
    for live in (coming, deleted, untimed):
        await known(client, live, admin)
    await deleted.delete()

    async def gone() -> bool:
        answer = await client.get(f"/api/live/streams/{deleted.id}/calendar.ics")
        return answer.status_code == 404

    await eventually(gone)
    answer = await client.get("/api/live/calendar.ics")
    assert answer.status_code == 200
    feed = Calendar.from_ical(answer.content)
    assert str(feed["X-WR-CALNAME"]) == "Vitrine lives"
    uids = {str(event["UID"]) for event in feed.walk("VEVENT")}
    assert f"live-{coming.id}@shop.example" in uids
    assert not any(str(deleted.id) in uid or str(untimed.id) in uid for uid in uids)
    no_time = await client.get(f"/api/live/streams/{untimed.id}/calendar.ics")
    assert no_time.status_code == 404
