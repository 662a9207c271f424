"""Calendar routes: a live's event and the shop's feed (RFC 5545, see `calendars`)."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response, status

from services.notifications import calendars
from services.notifications.api_deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api/live", tags=["notifications"])

CALENDAR: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "RFC 5545"}
}


@router.get(
    "/streams/{stream_id}/calendar.ics", response_class=Response, responses=CALENDAR,
    summary="A live as a calendar event (stable UID, SEQUENCE bumped when it moves)",
)  # fmt: skip
async def live_calendar(stream_id: UUID, session: SessionDep, settings: SettingsDep) -> Response:
    try:
        body = await calendars.live_calendar(
            session=session, stream_id=stream_id, public_url=settings.public_url,
            duration=timedelta(minutes=settings.calendar_duration_minutes),
        )  # fmt: skip
    except calendars.NoCalendar:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live, or no time yet") from None
    return _ics(body, f"live-{stream_id}.ics")


@router.get(
    "/calendar.ics", response_class=Response, responses=CALENDAR,
    summary="The shop's lives to come, as a calendar feed to subscribe to",
)  # fmt: skip
async def shop_calendar(session: SessionDep, settings: SettingsDep) -> Response:
    body = await calendars.shop_calendar(
        session=session, public_url=settings.public_url,
        duration=timedelta(minutes=settings.calendar_duration_minutes),
        name=settings.calendar_name,
    )  # fmt: skip
    return _ics(body, "lives.ics")


def _ics(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
