"""JWT verification shared by the gateway and every service (defence in depth).

HS256 with `JWT_SECRET` (Supabase-compatible) or RS256/ES256 through a JWKS URL. `sub` is the user
id; the role sits at a configurable claim path (`app_metadata.role` by default).
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status

from chassis.settings import ServiceSettings

ADMIN = "admin"
MODERATOR = "moderator"


@dataclass(frozen=True)
class Principal:
    """Who is calling. Anonymous viewers have no Principal at all."""

    user_id: str
    role: str | None
    display_name: str
    email: str | None
    token: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_moderator(self) -> bool:
        return self.role in (ADMIN, MODERATOR)


class InvalidToken(Exception):
    """The token is malformed, expired, or not signed by us."""


class SigningKeys:
    """The identity provider's public keys (JWKS). A token naming an unknown key refreshes them at
    most once per `refresh_s`, so forged tokens cannot make us hammer the provider."""

    def __init__(self, url: str, *, refresh_s: float = 60.0) -> None:
        self.client = jwt.PyJWKClient(url)
        self.refresh_s = refresh_s
        self.keys: dict[str | None, Any] = {}
        self.fetched_at = -refresh_s
        self.lock = asyncio.Lock()

    async def key_for(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in self.keys and time.monotonic() - self.fetched_at >= self.refresh_s:
            async with self.lock:
                if kid not in self.keys and time.monotonic() - self.fetched_at >= self.refresh_s:
                    self.fetched_at = time.monotonic()
                    # PyJWKClient fetches with blocking I/O.
                    fetched = await asyncio.to_thread(self.client.get_signing_keys, True)
                    self.keys = {k.key_id: k.key for k in fetched}
        if kid not in self.keys:
            raise InvalidToken("the token is signed with an unknown key")
        return self.keys[kid]


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.secret = settings.jwt_secret.get_secret_value()
        self.audience = settings.jwt_audience
        self.role_path = settings.jwt_role_claim.split(".")
        self.jwks = SigningKeys(settings.jwt_jwks_url) if settings.jwt_jwks_url else None

    async def verify(self, token: str) -> Principal:
        try:
            if self.jwks is not None:
                key: Any = await self.jwks.key_for(token)
                algorithms = ["RS256", "ES256"]
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
            )
        except (jwt.PyJWTError, ValueError, jwt.PyJWKClientError) as error:
            raise InvalidToken(str(error)) from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("the token has no subject")
        return Principal(
            user_id=claims["sub"],
            role=_claim(claims, self.role_path),
            display_name=display_name(claims),
            email=claims.get("email"),
            token=token,
        )


def _claim(claims: dict, path: list[str]) -> str | None:
    value: Any = claims
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def display_name(claims: dict) -> str:
    """From `user_metadata.name`, `.full_name`, else the e-mail's local part: users edit these
    themselves, so control characters are dropped and the length bounded."""
    meta = claims.get("user_metadata") or {}
    email = claims.get("email")
    candidates = [meta.get("name"), meta.get("full_name")]
    if isinstance(email, str) and "@" in email:
        candidates.append(email.split("@", 1)[0])
    for candidate in candidates:
        if isinstance(candidate, str):
            cleaned = " ".join("".join(c for c in candidate if c.isprintable()).split())
            if cleaned:
                return cleaned[:80]
    return "viewer"


def issue_token(
    *,
    secret: str,
    user_id: str,
    name: str | None = None,
    email: str | None = None,
    role: str | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """An HS256 token shaped like Supabase's, for development and tests."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + ttl,
        "aud": "authenticated",
        "role": "authenticated",
        "app_metadata": {"role": role} if role else {},
        "user_metadata": {"name": name} if name else {},
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "malformed Authorization header")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    token = bearer_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return await verifier.verify(token)
    except InvalidToken as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"invalid token: {error}",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None


async def signed_in(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


async def admin(principal: Annotated[Principal, Depends(signed_in)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return principal


async def moderator(principal: Annotated[Principal, Depends(signed_in)]) -> Principal:
    """A chat moderator (admins moderate too)."""
    if not principal.is_moderator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "moderators only")
    return principal


MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(signed_in)]
AdminUser = Annotated[Principal, Depends(admin)]
ModeratorUser = Annotated[Principal, Depends(moderator)]
