"""Signed links for a subscription: confirming it (double opt-in) and one-click unsubscribe.

A token is the subscription's id and an HMAC of it for one purpose, keyed by a key derived from
VITRINE_SECRET_KEY: nothing to store, nothing to look up before checking, and an unsubscribe link
keeps working for as long as the subscription exists (mail clients may use it months later).
"""

import base64
import enum
import hashlib
import hmac
import re
from uuid import UUID

TOKEN_MAX = 64  # the routes' bound on the parameter; ours are 22 + 1 + 22 characters
# Exactly what `sign` writes: two unpadded base64url parts of 16 bytes each. Anything else
# (padding, other characters, a longer part that decodes to the same bytes) is not ours.
TOKEN = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]\.[A-Za-z0-9_-]{21}[AQgw]")


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"


class BadToken(Exception):
    """Not a token we signed for this purpose."""


def b64url(raw: bytes) -> str:
    """Base64url without padding, as links and Web Push keys carry it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret_key: str) -> None:
        # Its own key, so a token can never be mistaken for anything else the secret signs.
        self.key = hashlib.sha256(b"vitrine-notifications-links:" + secret_key.encode()).digest()

    def _mac(self, purpose: Purpose, subscription_id: UUID) -> bytes:
        message = f"{purpose.value}:{subscription_id}".encode()
        return hmac.new(self.key, message, hashlib.sha256).digest()[:16]

    def sign(self, purpose: Purpose, subscription_id: UUID) -> str:
        return f"{b64url(subscription_id.bytes)}.{b64url(self._mac(purpose, subscription_id))}"

    def verify(self, purpose: Purpose, token: str) -> UUID:
        """The subscription the token names, or `BadToken`."""
        if not TOKEN.fullmatch(token):
            raise BadToken
        head, mac = token.split(".")
        subscription_id = UUID(bytes=unb64url(head))
        if not hmac.compare_digest(unb64url(mac), self._mac(purpose, subscription_id)):
            raise BadToken
        return subscription_id
