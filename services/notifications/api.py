"""Thin HTTP routes: subscribing, double opt-in, unsubscribing, and an admin's counts and
GDPR export and erasure. Nothing here ever answers with an address but the export."""

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import JSONResponse
from pydantic import EmailStr
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.auth import AdminUser, MaybeUser
from chassis.mailer import SendFailed
from services.notifications import calendar_api, lives, pages, sample, subscriptions
from services.notifications.api_deps import SessionDep, SettingsDep, SignerDep
from services.notifications.schemas import (
    EMAIL_MAX,
    Erased,
    LeadTime,
    LiveSubscribers,
    PersonalDataExport,
    ReminderPublic,
    ReminderRequest,
    SampleReminder,
    TestResult,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.tokens import TOKEN_MAX, BadToken, Purpose, Signer

Token = Annotated[str, Query(max_length=TOKEN_MAX, description="from the e-mail's link")]
USER_ID_MAX = 255

router = APIRouter(prefix="/api/live", tags=["notifications"])
Responses = dict[int | str, dict[str, Any]]
# What a caller who is not the address's signed-in owner learns: nothing about the address.
CHECK_YOUR_INBOX = {"status": "check_your_inbox"}
SUBSCRIBED: Responses = {
    200: {"model": ReminderPublic, "description": "already subscribed (its owner, or a browser)"},
    202: {
        "content": {"application/json": {"example": CHECK_YOUR_INBOX}},
        "description": "an address not the caller's own: the same answer whether it was new, "
        "pending or confirmed; a confirmation goes to it if it is not confirmed yet",
    },
}


def _subscription(signer: Signer, purpose: Purpose, token: str) -> UUID:
    try:
        return signer.verify(purpose, token)
    except BadToken:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription") from None


async def _subscribe(
    *, session: AsyncSession, settings: NotificationsSettings, signer: Signer,
    stream_id: UUID | None, data: ReminderRequest, caller: MaybeUser, response: Response,
) -> ReminderPublic | Response:  # fmt: skip
    try:
        done = await subscriptions.subscribe(
            session=session, settings=settings, stream_id=stream_id, data=data, caller=caller
        )
    except subscriptions.LiveNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live") from None
    except subscriptions.NoAddress:
        raise HTTPException(422, "an e-mail is needed (or sign in)") from None
    except subscriptions.PushHostRefused:
        raise HTTPException(422, "this push endpoint is not at a known push service") from None
    except subscriptions.PushUnavailable:
        raise HTTPException(status.HTTP_409_CONFLICT, "Web Push is not set up here") from None
    if not done.disclosed:
        return JSONResponse(CHECK_YOUR_INBOX, status_code=status.HTTP_202_ACCEPTED)
    if not done.created:
        response.status_code = status.HTTP_200_OK
    # Its owner (or browser) keeps it to unsubscribe from the page; e-mails carry their own.
    if done.disclosed:
        token = signer.sign(Purpose.UNSUBSCRIBE, done.reminder.id)
        return done.reminder.model_copy(update={"unsubscribe_token": token})
    return done.reminder


@router.post(
    "/streams/{stream_id}/reminders", status_code=201, responses=SUBSCRIBED,
    response_model=ReminderPublic,
    summary="Be reminded of a live (an address not the token's gets a confirmation first)",
)  # fmt: skip
async def remind_me(
    stream_id: UUID, data: ReminderRequest, session: SessionDep, settings: SettingsDep,
    signer: SignerDep, caller: MaybeUser, response: Response,
) -> ReminderPublic | Response:  # fmt: skip
    return await _subscribe(
        session=session, settings=settings, signer=signer, stream_id=stream_id, data=data,
        caller=caller, response=response,
    )  # fmt: skip


@router.post(
    "/reminders", status_code=201, responses=SUBSCRIBED,
    response_model=ReminderPublic,
    summary="Follow the shop: be reminded of every live to come",
)  # fmt: skip
async def follow_the_shop(
    data: ReminderRequest, session: SessionDep, settings: SettingsDep, signer: SignerDep,
    caller: MaybeUser, response: Response,
) -> ReminderPublic | Response:  # fmt: skip
    return await _subscribe(
        session=session, settings=settings, signer=signer, stream_id=None, data=data,
        caller=caller, response=response,
    )  # fmt: skip


@router.get("/streams/{stream_id}/reminders", summary="How many will be reminded (admin)")
async def live_subscribers(
    stream_id: UUID, session: SessionDep, settings: SettingsDep, caller: AdminUser
) -> LiveSubscribers:
    try:
        return await subscriptions.count(session=session, settings=settings, stream_id=stream_id)
    except subscriptions.LiveNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live") from None


@router.put("/streams/{stream_id}/reminder-settings", summary="A live's reminder lead time (admin)")
async def set_lead_time(
    stream_id: UUID, data: LeadTime, session: SessionDep, settings: SettingsDep, caller: AdminUser
) -> LiveSubscribers:
    known = await lives.set_lead_time(
        session,
        stream_id=stream_id,
        lead_minutes=data.lead_minutes,
        default_lead_minutes=settings.reminder_lead_minutes,
    )
    if not known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live")
    await session.commit()
    return await subscriptions.count(session=session, settings=settings, stream_id=stream_id)


@router.post(
    "/streams/{stream_id}/reminders/test",
    summary="Send the live's reminder now to one address, as a test (admin)",
)  # fmt: skip
async def send_test(
    request: Request, stream_id: UUID, data: SampleReminder, session: SessionDep,
    settings: SettingsDep, caller: AdminUser,
) -> TestResult:  # fmt: skip
    """The test's outcome: sent (the mail server took it), or why not — a diagnosis of the
    SMTP settings, so a refusal is an answer, not an error of this route."""
    try:
        known = await sample.send_test(
            session=session, settings=settings, mailer=request.app.state.dispatcher.mailer,
            stream_id=stream_id, data=data,
        )  # fmt: skip
    except SendFailed as error:
        return TestResult(sent=False, reason=str(error))
    if not known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live")
    return TestResult(sent=True)


@dataclass(frozen=True)
class Person:
    email: str | None
    user_id: str | None


def _person(
    email: Annotated[EmailStr | None, Query(max_length=EMAIL_MAX)] = None,
    user_id: Annotated[
        str | None, Query(min_length=1, max_length=USER_ID_MAX, description="the token's `sub`")
    ] = None,
) -> Person:
    """Whom a GDPR request is about: an address, a signed-in user, or both."""
    if email is None and user_id is None:
        raise HTTPException(422, "an `email` or a `user_id` is needed")
    return Person(email=email, user_id=user_id)


PersonDep = Annotated[Person, Depends(_person)]


@router.get("/reminders", summary="Everything kept about a person (admin, GDPR)")
async def export_personal_data(
    person: PersonDep, session: SessionDep, caller: AdminUser
) -> PersonalDataExport:
    return await subscriptions.export(session=session, email=person.email, user_id=person.user_id)


@router.delete("/reminders", summary="Forget a person entirely (admin, GDPR)")
async def erase_personal_data(person: PersonDep, session: SessionDep, caller: AdminUser) -> Erased:
    erased = await subscriptions.erase(session=session, email=person.email, user_id=person.user_id)
    return Erased(subscriptions_deleted=erased)


@router.get("/reminders/confirm", include_in_schema=False)
async def confirm_page(token: Token) -> Response:
    return pages.ask("confirm", token)


@router.post("/reminders/confirm", summary="Confirm a reminder (the e-mail's link)")
async def confirm(
    request: Request, token: Token, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> Response:
    subscription_id = _subscription(signer, Purpose.CONFIRM, token)
    reminder = await subscriptions.confirm(
        session=session, settings=settings, subscription_id=subscription_id
    )
    if _from_a_form(request):
        return pages.done("confirm" if reminder else "gone", 200 if reminder else 404)
    if reminder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription")
    return Response(reminder.model_dump_json(), media_type="application/json")


@router.get("/reminders/unsubscribe", include_in_schema=False)
async def unsubscribe_page(token: Token) -> Response:
    return pages.ask("unsubscribe", token)


@router.post("/reminders/unsubscribe", summary="One-click unsubscribe (RFC 8058)")
async def one_click_unsubscribe(
    request: Request, token: Token, session: SessionDep, signer: SignerDep
) -> Response:
    """What mail clients POST (`List-Unsubscribe=One-Click`), and the page's button."""
    subscription_id = _subscription(signer, Purpose.UNSUBSCRIBE, token)
    await subscriptions.unsubscribe(session=session, subscription_id=subscription_id)
    return pages.done("unsubscribe")


@router.delete("/reminders/{token}", status_code=204, summary="Unsubscribe by the link's token")
async def unsubscribe(
    token: Annotated[str, Path(max_length=TOKEN_MAX, description="from the unsubscribe link")],
    session: SessionDep,
    signer: SignerDep,
) -> Response:
    subscription_id = _subscription(signer, Purpose.UNSUBSCRIBE, token)
    await subscriptions.unsubscribe(session=session, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get("/push/public-key", summary="The VAPID key browsers subscribe to Web Push with")
async def push_public_key(request: Request) -> dict[str, str]:
    """`applicationServerKey` for `pushManager.subscribe` (base64url, uncompressed P-256)."""
    key = request.app.state.push_public_key
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Web Push is not set up (VAPID_PRIVATE_KEY)")
    return {"public_key": key}


def _from_a_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(calendar_api.router)
