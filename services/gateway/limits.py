"""How many reminder subscriptions one client may ask for, so that nobody signs up thousands of
addresses or makes the notifications service send confirmations to whomever they please.

One token bucket per client in Redis (`chassis.limits`), shared by the two subscribe routes and
by every gateway replica: a signed-in user counts by their id, anyone else by IP address (IPv6
by /64, the block one host is given, so it cannot rotate its way past). Only subscriptions the
service took (2xx) are spent: an attempt it refused or never got is given back, so a viewer who
hit a deploy is not locked out. Over the limit: 429 with `Retry-After`, nothing forwarded.
"""

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response
from redis.asyncio import Redis

from chassis.auth import Principal
from chassis.limits import BucketScript, retry_after_s

IPV6_BLOCK = 64

_TAKE = """
return take_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""


@dataclass(frozen=True)
class Rate:
    """`burst` subscriptions at once, then `per_hour`."""

    burst: int
    per_hour: float


def client_of(request: Request, caller: Principal | None) -> str:
    """Whose budget a subscription spends: the user's, else the address's (or its IPv6 /64)."""
    if caller is not None:
        return f"user:{caller.user_id}"
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"host:{host}"  # not an address (a test client, a Unix socket)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            block = ipaddress.IPv6Network((int(address), IPV6_BLOCK), strict=False)
            return f"ip:{block}"
        address = address.ipv4_mapped
    return f"ip:{address}"


class SubscribeLimits:
    def __init__(self, *, redis: Redis, prefix: str, anonymous: Rate, signed_in: Rate) -> None:
        self.prefix = prefix
        self.anonymous = anonymous
        self.signed_in = signed_in
        self._script = BucketScript(redis, _TAKE, name="reminder subscription limits")

    async def within(
        self,
        request: Request,
        caller: Principal | None,
        subscribe: Callable[[], Awaitable[Response]],
    ) -> Response:
        """`subscribe()`'s answer, if the caller has a subscription left (admins always do);
        else 429 with `Retry-After`, and `subscribe` is not called."""
        if caller is not None and caller.is_admin:
            return await subscribe()
        key = f"{self.prefix}reminders:subscribe:{client_of(request, caller)}"
        rate = self.anonymous if caller is None else self.signed_in
        wait_ms = await self._take(key, rate, cost=1)
        if wait_ms:
            retry_after = retry_after_s(wait_ms)
            raise HTTPException(
                429,
                f"too many reminder subscriptions: try again in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )
        try:
            answer = await subscribe()
        except Exception:  # the service never answered (502, 503, 504)
            await self._take(key, rate, cost=-1)
            raise
        if not 200 <= answer.status_code < 300:
            await self._take(key, rate, cost=-1)
        return answer

    async def _take(self, key: str, rate: Rate, *, cost: int) -> int:
        """0 when taken (or Redis is away), else the milliseconds to wait."""
        args = [rate.burst, rate.per_hour / 3600, cost]
        wait_ms = await self._script.run(keys=[key], args=args)
        return int(wait_ms or 0)
