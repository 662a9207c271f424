"""Encryption at rest for provider secrets (keys derived from `VITRINE_SECRET_KEY`)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

MASK = "••••••••"


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"vitrine-secrets:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("this secret was sealed with another VITRINE_SECRET_KEY") from None


def mask(secret: str | None) -> str | None:
    """What an admin sees of a stored secret: that it exists, and its last characters."""
    if not secret:
        return None
    return MASK + secret[-4:] if len(secret) >= 12 else MASK
