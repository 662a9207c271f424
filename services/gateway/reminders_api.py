"""External routes of the notifications service (reminders, calendars): authentication here,
then the notifications service answers (and checks the token again)."""

import functools
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from chassis.auth import AdminUser, MaybeUser, Principal
from services.gateway.api import StreamId, Upstream
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.openapi import (
    ADMIN,
    BODY,
    CONFLICT,
    NOT_FOUND,
    TOKEN,
    Answers,
    answers,
    body,
    error,
)
from services.notifications.schemas import (
    Erased,
    LeadTime,
    LiveSubscribers,
    PersonalDataExport,
    ReminderPublic,
    ReminderRequest,
    SampleReminder,
    TestResult,
)

router = APIRouter(tags=["notifications"])
SERVICE_WORKER = FilePath(__file__).with_name("web") / "sw.js"

# 201 a new subscription of the caller's own address (or browser), 200 an existing one.
SUBSCRIBE_ANSWERS = answers(
    TOKEN,
    NOT_FOUND,
    BODY,
    CONFLICT,
    {
        200: {
            "model": ReminderPublic,
            "description": "already subscribed (its owner, or a browser)",
        },
        202: {"description": 'an address not the caller\'s own: {"status": "check_your_inbox"}'},
        429: error(
            "too many subscriptions from this client (its user, else its IP address)",
            retry_after=True,
        ),
    },
)
Token = Annotated[str, Query(max_length=64, description="from the e-mail's link")]
Email = Annotated[str | None, Query(max_length=254, description="the person's address")]
UserId = Annotated[
    str | None, Query(min_length=1, max_length=255, description="the person's user id (`sub`)")
]


@router.post(
    "/api/live/streams/{stream_id}/reminders", status_code=201, response_model=ReminderPublic,
    openapi_extra=body(ReminderRequest), responses=SUBSCRIBE_ANSWERS,
    summary="Be reminded of a live: {channel: email, email?, language?, time_zone?}",
)  # fmt: skip
async def remind_me(
    request: Request, stream_id: StreamId, caller: MaybeUser, gateway: GatewayDep
) -> Response:
    """Signed in with that e-mail: confirmed at once (201, or 200 when it already was). Any
    other address: 202 `{"status": "check_your_inbox"}` whatever its state, and a confirmation
    goes to it while it is not confirmed (nobody learns whether an address is subscribed)."""
    return await _subscribe(request, caller, gateway)


@router.get(
    "/api/live/streams/{stream_id}/reminders", response_model=LiveSubscribers,
    responses=answers(ADMIN, NOT_FOUND), summary="How many will be reminded (admin)",
)  # fmt: skip
async def live_subscribers(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "notifications")


@router.post(
    "/api/live/streams/{stream_id}/reminders/test", response_model=TestResult,
    openapi_extra=body(SampleReminder), responses=answers(ADMIN, NOT_FOUND, BODY),
    summary="Send the live's reminder now to one address, as a test (admin)",
)  # fmt: skip
async def send_test(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "notifications")


@router.put(
    "/api/live/streams/{stream_id}/reminder-settings", response_model=LiveSubscribers,
    openapi_extra=body(LeadTime), responses=answers(ADMIN, NOT_FOUND, BODY),
    summary="A live's reminder lead time in minutes (admin)",
)  # fmt: skip
async def reminder_settings(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "notifications")


CALENDAR: Answers = {200: {"content": {"text/calendar": {}}, "description": "RFC 5545"}}


@router.get(
    "/api/live/streams/{stream_id}/calendar.ics", response_class=Response,
    responses=answers(NOT_FOUND, CALENDAR),
    summary="Add a live to a calendar (RFC 5545)",
)  # fmt: skip
async def live_calendar(request: Request, stream_id: StreamId, up: Upstream) -> Response:
    return _named(await up.forward(request, "notifications"), f"live-{stream_id}.ics")


@router.get(
    "/api/live/calendar.ics", response_class=Response, responses=answers(CALENDAR),
    summary="The shop's lives to come, a calendar feed to subscribe to",
)  # fmt: skip
async def shop_calendar(request: Request, up: Upstream) -> Response:
    return _named(await up.forward(request, "notifications"), "lives.ics")


def _named(answer: Response, filename: str) -> Response:
    """Calendar apps and browsers name the file from this (the forward keeps few headers)."""
    if answer.status_code == 200:
        answer.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return answer


@router.post(
    "/api/live/reminders", status_code=201, response_model=ReminderPublic,
    openapi_extra=body(ReminderRequest), responses=SUBSCRIBE_ANSWERS,
    summary="Follow the shop: be reminded of every live to come",
)  # fmt: skip
async def follow_the_shop(request: Request, caller: MaybeUser, gateway: GatewayDep) -> Response:
    """Like a live's reminders: 202 `{"status": "check_your_inbox"}` for an address not the
    caller's own."""
    return await _subscribe(request, caller, gateway)


async def _subscribe(request: Request, caller: Principal | None, gateway: Gateway) -> Response:
    """Forwarded within the client's subscription limit (services/gateway/limits.py)."""
    forward = functools.partial(gateway.upstream.forward, request, "notifications")
    return await gateway.subscribe_limits.within(request, caller, forward)


@router.get(
    "/api/live/reminders", response_model=PersonalDataExport, responses=answers(ADMIN),
    summary="Everything kept about a person, by address or user id (admin, GDPR)",
)  # fmt: skip
async def export_personal_data(
    request: Request, caller: AdminUser, up: Upstream, email: Email = None, user_id: UserId = None
) -> Response:
    return await up.forward(request, "notifications")


@router.delete(
    "/api/live/reminders", response_model=Erased, responses=answers(ADMIN),
    summary="Forget a person entirely, by address or user id (admin, GDPR)",
)  # fmt: skip
async def erase_personal_data(
    request: Request, caller: AdminUser, up: Upstream, email: Email = None, user_id: UserId = None
) -> Response:
    return await up.forward(request, "notifications")


@router.get("/api/live/reminders/confirm", include_in_schema=False)
@router.get("/api/live/reminders/unsubscribe", include_in_schema=False)
async def link_page(request: Request, token: Token, up: Upstream) -> Response:
    """The page an e-mail's link opens: one button, which does it."""
    return _link_headers(await up.forward(request, "notifications"))


@router.post(
    "/api/live/reminders/confirm", operation_id="confirm_reminder", responses=answers(NOT_FOUND),
    summary="Confirm a reminder (the e-mail's link)",
)  # fmt: skip
@router.post(
    "/api/live/reminders/unsubscribe", operation_id="one_click_unsubscribe",
    responses=answers(NOT_FOUND), summary="One-click unsubscribe (RFC 8058)",
)  # fmt: skip
async def link_action(request: Request, token: Token, up: Upstream) -> Response:
    return _link_headers(await up.forward(request, "notifications"))


def _link_headers(answer: Response) -> Response:
    """The token is in the address: no referrer carries it away, no cache keeps the page."""
    answer.headers.update(
        {
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
            ),
        }
    )
    return answer


@router.delete(
    "/api/live/reminders/{token}", status_code=204, responses=answers(NOT_FOUND),
    summary="Unsubscribe by the link's token",
)  # fmt: skip
async def unsubscribe(
    request: Request,
    token: Annotated[str, Path(max_length=64, description="from the unsubscribe link")],
    up: Upstream,
) -> Response:
    return await up.forward(request, "notifications")


@router.get(
    "/api/live/push/public-key", response_model=dict[str, str], responses=answers(NOT_FOUND),
    summary="The VAPID key to subscribe to Web Push with (404 when Web Push is not set up)",
)  # fmt: skip
async def push_public_key(request: Request, up: Upstream) -> Response:
    """`applicationServerKey` for `pushManager.subscribe` in the viewer's browser."""
    return await up.forward(request, "notifications")


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> FileResponse:
    """The viewer page's service worker (it shows the pushed reminders), at the root so that
    its scope is the whole site."""
    return FileResponse(
        SERVICE_WORKER,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
