"""A Web Push service stand-in, as FCM or Mozilla's autopush are to a browser: it hands out
subscriptions (endpoint + keys, the browser's side of RFC 8291 kept here), and on each push
checks the VAPID token (RFC 8292: ES256 JWT signed by the key the subscription was made with,
`aud` its own origin, `exp` within 24 h, a `sub` contact), then decrypts the aes128gcm payload
and keeps it. A subscription can be made to fail (429, 500) or to be gone (410)."""

import base64
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.tls import serving_https


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One push subscription, with the browser's private half."""

    id: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str
    answers: list[int] = field(default_factory=list)  # statuses to answer first, in order
    gone: bool = False


@dataclass
class Push:
    browser: str
    payload: dict[str, Any]
    ttl: int
    urgency: str | None


class PushService:
    def __init__(self) -> None:
        self.base_url = ""
        self.browsers: dict[str, Browser] = {}
        self.pushes: list[Push] = []
        self.refused: list[str] = []  # why pushes were refused (bad VAPID, bad encoding)
        self.app = Starlette(routes=[Route("/push/{id}", self._push, methods=["POST"])])

    def subscribe(self, *, application_server_key: str) -> tuple[str, dict[str, Any]]:
        """What `pushManager.subscribe()` gives a page: (the browser's id, the subscription)."""
        browser = Browser(
            id=secrets.token_urlsafe(12),
            key=ec.generate_private_key(ec.SECP256R1()),
            auth=os.urandom(16),
            application_server_key=application_server_key,
        )
        self.browsers[browser.id] = browser
        public = browser.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return browser.id, {
            "endpoint": f"{self.base_url}/push/{browser.id}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(browser.auth)},
        }

    def to(self, browser_id: str) -> list[Push]:
        return [push for push in self.pushes if push.browser == browser_id]

    async def _push(self, request: Request) -> Response:
        browser = self.browsers.get(request.path_params["id"])
        if browser is None:
            return Response(status_code=404)
        if browser.gone:
            return Response(status_code=410)
        if browser.answers:
            return Response(status_code=browser.answers.pop(0))
        why = self._vapid_refusal(request, browser)
        if why is None and request.headers.get("content-encoding") != "aes128gcm":
            why = "not aes128gcm"
        if why is None and not request.headers.get("ttl", "").isdigit():
            why = "no TTL"
        if why is not None:
            self.refused.append(why)
            return Response(why, status_code=403 if "vapid" in why else 400)
        try:
            plain = http_ece.decrypt(
                await request.body(), private_key=browser.key, auth_secret=browser.auth,
                version="aes128gcm",
            )  # fmt: skip
        except Exception as error:
            self.refused.append(f"undecryptable: {error}")
            return Response(status_code=400)
        self.pushes.append(
            Push(browser.id, json.loads(plain), int(request.headers["ttl"]),
                 request.headers.get("urgency"))
        )  # fmt: skip
        return Response(status_code=201)

    def _vapid_refusal(self, request: Request, browser: Browser) -> str | None:
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return "vapid: no vapid authorization"
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, key = fields.get("t", ""), fields.get("k", "")
        if key != browser.application_server_key:
            return "vapid: not the key the subscription was made with"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            claims = jwt.decode(
                token, public, algorithms=["ES256"], audience=self.base_url,
                options={"require": ["aud", "exp", "sub"]},
            )  # fmt: skip
        except jwt.PyJWTError as error:
            return f"vapid: {error}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "vapid: exp more than 24 h away"
        if not str(claims["sub"]).startswith(("mailto:", "https://")):
            return "vapid: sub is no contact"
        return None


@contextmanager
def running_push_service() -> Iterator[tuple[PushService, str]]:
    """The stand-in over HTTPS on a spare port: it, and the CA bundle to trust it with."""
    service = PushService()
    with serving_https(service.app, name="push-service") as (base_url, ca_bundle):
        service.base_url = base_url
        yield service, ca_bundle
