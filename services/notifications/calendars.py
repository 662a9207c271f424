"""Calendars (RFC 5545, written by `icalendar`): one live's event to add to a calendar, and the
shop's feed of lives to come that a calendar app subscribes to.

A live's UID never changes, and its SEQUENCE goes up each time its time moves, so a calendar
that has it updates the event instead of adding a second one.
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

import sqlalchemy as sa
from icalendar import Calendar, Event
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import lives

PRODID = "-//Vitrine//Live shopping//EN"
FEED_MAX = 200
FEED_PAST = timedelta(days=1)  # a live that just happened stays in the feed a day


class NoCalendar(Exception):
    """No such live, or one without a time yet."""


def _event(live: sa.Row, *, public_url: str, duration: timedelta) -> Event:
    base = public_url.rstrip("/")
    starts = live.scheduled_at or live.started_at
    event = Event()
    event.add("uid", f"live-{live.stream_id}@{urlsplit(base).hostname or 'vitrine'}")
    event.add("dtstamp", live.version.astimezone(UTC))
    event.add("dtstart", starts.astimezone(UTC))
    event.add("dtend", starts.astimezone(UTC) + duration)
    event.add("sequence", live.sequence)
    event.add("summary", live.title)
    if live.description:
        event.add("description", live.description)
    event.add("url", f"{base}/live/{live.stream_id}")
    event.add("location", f"{base}/live/{live.stream_id}")
    event.add("status", "CONFIRMED")
    event.add("transp", "TRANSPARENT")  # watching a live does not make one busy
    return event


def _calendar(name: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


async def live_calendar(
    *, session: AsyncSession, stream_id: UUID, public_url: str, duration: timedelta
) -> bytes:
    """The live as one calendar event; `NoCalendar` if it is unknown, deleted or has no time."""
    live = (await session.execute(sa.select(lives).where(lives.c.stream_id == stream_id))).first()
    if live is None or live.status == "deleted" or not (live.scheduled_at or live.started_at):
        raise NoCalendar(stream_id)
    calendar = _calendar()
    calendar.add_component(_event(live, public_url=public_url, duration=duration))
    return calendar.to_ical()


async def shop_calendar(
    *, session: AsyncSession, public_url: str, duration: timedelta, name: str
) -> bytes:
    """The lives to come (and those on air or just past), soonest first."""
    since = datetime.now(UTC) - FEED_PAST
    rows = (
        await session.execute(
            sa.select(lives)
            .where(
                lives.c.status.in_(("scheduled", "live", "ended")),
                lives.c.scheduled_at.is_not(None),
                lives.c.scheduled_at >= since,
            )
            .order_by(lives.c.scheduled_at)
            .limit(FEED_MAX)
        )
    ).all()
    calendar = _calendar(name)
    for live in rows:
        calendar.add_component(_event(live, public_url=public_url, duration=duration))
    return calendar.to_ical()
