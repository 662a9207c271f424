"""Web Push: VAPID (RFC 8292) to say who sends, the payload encrypted for the browser
(RFC 8291, aes128gcm, with `http_ece`), posted to the browser's push service with httpx.

A push service answering 404 or 410 says the subscription is gone for good: the caller
removes it. 429 and 5xx are worth another attempt; any other refusal is not.
"""

import hashlib
import json
import os
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from chassis.mailer import SendFailed
from services.notifications.tokens import b64url, unb64url

# RFC 8292 allows 24 h at most; some push services refuse a token that close to it.
VAPID_TTL_S = 12 * 3600
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class SubscriptionGone(Exception):
    """The push service no longer knows this subscription (404/410)."""


def load_key(value: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key given as PEM or as the base64url raw scalar."""
    if value.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(value.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("VAPID_PRIVATE_KEY is not an EC key")
        return key
    return ec.derive_private_key(int.from_bytes(unb64url(value.strip()), "big"), ec.SECP256R1())


def development_key(secret_key: str) -> ec.EllipticCurvePrivateKey:
    """The same key for every process and restart of one development setup, with no setting."""
    digest = hashlib.sha256(b"vitrine-vapid:" + secret_key.encode()).digest()
    return ec.derive_private_key(
        int.from_bytes(digest, "big") % (P256_ORDER - 1) + 1, ec.SECP256R1()
    )


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    """The applicationServerKey a browser subscribes with (uncompressed point, base64url)."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


class PushSender:
    def __init__(
        self,
        *,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        timeout_s: float,
        ca_bundle: str | None = None,
    ) -> None:
        self.vapid = Vapid02(private_key=key)
        self.subject = subject
        self.tokens: dict[str, tuple[float, dict[str, str]]] = {}  # per push service origin
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            verify=ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self.client.aclose()

    def _authorization(self, origin: str) -> dict[str, str]:
        """The VAPID header for a push service, signed once and reused while far from expiry
        (an ES256 signature per message would cost more than the encryption)."""
        now = time.time()
        kept = self.tokens.get(origin)
        if kept is None or kept[0] - now < VAPID_TTL_S / 2:
            expires = int(now) + VAPID_TTL_S
            header = self.vapid.sign({"aud": origin, "sub": self.subject, "exp": expires})
            kept = self.tokens[origin] = (expires, header)
        return kept[1]

    async def send(
        self, *, endpoint: str, p256dh: str, auth: str, payload: dict[str, Any], ttl_s: int,
        urgency: str = "normal",
    ) -> None:  # fmt: skip
        """Encrypt `payload` for the browser and hand it to its push service."""
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        body = http_ece.encrypt(
            json.dumps(payload, ensure_ascii=False).encode(),
            salt=os.urandom(16),
            private_key=ephemeral,
            dh=unb64url(p256dh),
            auth_secret=unb64url(auth),
            version="aes128gcm",
        )
        headers = dict(self._authorization("{0.scheme}://{0.netloc}".format(urlsplit(endpoint))))
        headers.update(
            {
                "TTL": str(max(ttl_s, 0)),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Urgency": urgency,
            }
        )
        try:
            answer = await self.client.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise SendFailed(type(error).__name__, permanent=False) from None
        if answer.status_code in (404, 410):
            raise SubscriptionGone
        if answer.status_code == 429 or answer.status_code >= 500:
            raise SendFailed(f"push service {answer.status_code}", permanent=False)
        if not 200 <= answer.status_code < 300:
            raise SendFailed(f"push service {answer.status_code}", permanent=True)
