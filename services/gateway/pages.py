"""The viewer page and the admin console, served by the gateway (issue 7).

Plain HTML and small JavaScript modules from `web/`; they use only the public API and the viewer
websocket, through the JavaScript SDK `@vitrine/client` (clients/js/src, served as it is under
/static/sdk: one implementation of the socket's protocol). A dev sign-in exists outside production
only.
"""

import secrets
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError

from chassis.auth import issue_token
from chassis.settings import ServiceSettings
from services.gateway.deps import gateway_of

WEB = Path(__file__).with_name("web")
DEMO = Path(__file__).with_name("demo")  # the demo live's product pictures: it works offline
SDK = Path(__file__).parents[2] / "clients" / "js" / "src"  # plain ES modules: no build step
DEV_TOKEN_TTL = timedelta(hours=12)

# Pages build the DOM from text (never HTML from data), and load scripts from here only.
# Media and API calls may reach the video provider (HLS on another host) and websockets.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
        "media-src * blob:; connect-src 'self' ws: wss: http: https:; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)
# Before /static, which would otherwise answer for /static/sdk/… too.
router.mount("/static/sdk", StaticFiles(directory=SDK), name="sdk")
router.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
router.mount("/demo", StaticFiles(directory=DEMO), name="demo")


def _settings(request: Request) -> ServiceSettings:
    return gateway_of(request.app).settings


@cache
def _template(name: str) -> str:
    """A page with the parts both pages share (the sign-in dialog) put in."""
    html = (WEB / name).read_text(encoding="utf-8")
    return html.replace("{{signin_dialog}}", (WEB / "signin.html").read_text(encoding="utf-8"))


def _page(request: Request, name: str) -> HTMLResponse:
    """A page, told whether the dev sign-in exists (it does outside production only)."""
    dev = "true" if _settings(request).is_development else "false"
    html = _template(name).replace("{{dev_sign_in}}", dev)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.get("/live")
@router.get("/live/{stream_id}")
async def viewer_page(request: Request) -> HTMLResponse:
    """The live on air (or the next one), or the one named: video, products, chat."""
    return _page(request, "live.html")


@router.get("/admin")
async def admin_page(request: Request) -> HTMLResponse:
    """Lives, their control room and the video platform settings (the API checks the role)."""
    return _page(request, "admin.html")


class DevSignIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=80)] = "Dev"
    role: Literal["admin", "moderator"] | None = None


@router.post("/dev/sign-in")
async def dev_sign_in(request: Request) -> dict[str, str]:
    """A token signed with the gateway's JWT secret, for local use. In production this route
    answers exactly like one that does not exist: the shop's own auth issues tokens there."""
    settings = _settings(request)
    if not settings.is_development:
        raise HTTPException(404, "Not Found")
    try:  # read after the check, so production never reveals the route by validating a body
        data = DevSignIn.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        raise HTTPException(422, error.errors(include_url=False, include_context=False)) from None
    token = issue_token(
        secret=settings.jwt_secret.get_secret_value(),
        user_id=f"dev-{secrets.token_hex(6)}",
        name=data.name.strip() or "Dev",
        role=data.role,
        ttl=DEV_TOKEN_TTL,
    )
    return {"token": token}
