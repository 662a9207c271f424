"""Provider callbacks and webhooks: verified first, then handed to their use case.

Answers: 401 when the caller is not the provider (nothing looked at, nothing changed), 2xx once
handled — also for duplicates and late reports, so providers stop retrying them.
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Query, Request, status
from fastapi.responses import Response

from chassis.routes import SessionDep
from contracts.streams import Platform
from services.streams import ivs_webhooks, nginx_callbacks, provider_settings, provider_webhooks
from services.streams.deps import DepsDep
from services.streams.providers import ivs_events, mux

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _nginx_callback(deps: DepsDep, secret: Annotated[str | None, Query()] = None) -> None:
    """nginx-rtmp cannot sign its callbacks; its URLs carry `?secret=` instead."""
    expected = deps.settings.rtmp_callback_secret.get_secret_value()
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong or missing callback secret")


NginxName = Annotated[str, Form(min_length=1, max_length=512)]
# What else nginx posts, kept to say why a publish was refused (never required).
NginxDetail = Annotated[str | None, Form(max_length=512)]
NginxCallback = [Depends(_nginx_callback)]


@router.post("/nginx-rtmp/on_publish", dependencies=NginxCallback)
async def on_publish(
    name: NginxName,
    session: SessionDep,
    deps: DepsDep,
    app: NginxDetail = None,
    addr: NginxDetail = None,
) -> Response:
    """Authorise an encoder; the 302 renames its stream to the public playback id, a 403
    refuses it (and the reason is kept for the admin)."""
    playback_id = await nginx_callbacks.on_publish(
        session=session, deps=deps, name=name, app=app, addr=addr
    )
    return Response(status_code=status.HTTP_302_FOUND, headers={"Location": playback_id})


@router.post("/nginx-rtmp/on_publish_done", dependencies=NginxCallback)
async def on_publish_done(name: NginxName, session: SessionDep, deps: DepsDep) -> Response:
    """The encoder left: the live ends after the reconnect grace unless it comes back."""
    await nginx_callbacks.on_publish_done(session=session, deps=deps, name=name)
    return Response(status_code=status.HTTP_200_OK)


@router.post("/nginx-rtmp/on_record_done", dependencies=NginxCallback)
async def on_record_done(
    name: NginxName,
    path: Annotated[str, Form(min_length=1, max_length=1024)],
    session: SessionDep,
    deps: DepsDep,
    duration: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """A recording is complete (`duration` seconds, from record-done.sh's ffprobe): it becomes
    the live's replay."""
    await nginx_callbacks.on_record_done(
        session=session, deps=deps, name=name, path=path, duration=duration
    )
    return Response(status_code=status.HTTP_200_OK)


@router.post("/mux")
async def mux_webhook(request: Request, session: SessionDep, deps: DepsDep) -> dict[str, str]:
    """Mux's webhooks, signed with `Mux-Signature` by one of the configured secrets."""
    body = await request.body()
    stored = await provider_settings.stored_secrets(session=session, deps=deps)
    secrets = [stored[n] for n in ("webhook_secret", "webhook_secret_previous") if n in stored]
    secrets += deps.settings.mux_webhook_secrets
    try:
        mux.verify_signature(
            header=request.headers.get("mux-signature"), body=body, secrets=secrets
        )
    except mux.BadSignature as error:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(error)) from None
    try:
        ref, event = mux.parse_webhook(body)
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    outcome = await provider_webhooks.handle(
        session=session, deps=deps, platform=Platform.MUX, provider_ref=ref, event=event
    )
    return {"outcome": outcome}


@router.post("/ivs")
async def ivs_webhook(
    request: Request,
    session: SessionDep,
    deps: DepsDep,
    secret: Annotated[str | None, Header(alias=ivs_events.SECRET_HEADER)] = None,
) -> dict[str, str]:
    """AWS IVS's events from an EventBridge API destination, whose connection adds the shared
    secret header."""
    body = await request.body()
    try:
        outcome = await ivs_webhooks.receive(session=session, deps=deps, body=body, secret=secret)
    except ivs_events.BadSecret as error:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(error)) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return {"outcome": outcome}
