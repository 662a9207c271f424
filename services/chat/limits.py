"""Flood protection and slow mode, kept in Redis so every replica of the service agrees.

One Lua script checks both atomically and only then spends: a message refused by slow mode does
not cost a token, and the reverse. Every user has keys of their own, so one user's burst never
delays anyone else. The clock is Redis's (`TIME`), the same for every replica.
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.chat import domain

log = logging.getLogger(__name__)

# Same arithmetic as `domain.take_token` and `domain.slow_mode_wait_ms`.
_POST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local slow_ms = tonumber(ARGV[3])
if slow_ms > 0 then
  local last = tonumber(redis.call('GET', KEYS[2]))
  if last and last + slow_ms > now then
    return {0, last + slow_ms - now, 'slow_mode'}
  end
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
if tokens == nil then
  tokens = capacity
else
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(capacity, tokens + elapsed * rate / 1000)
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate), 'rate_limit'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
redis.call('SET', KEYS[2], now, 'PX', ARGV[4])
return {1, 0, 'ok'}
"""


class TooFast(Exception):
    """The user must wait before posting again (slow mode, or flood protection)."""

    def __init__(self, *, reason: str, wait_ms: int) -> None:
        self.reason = reason
        self.retry_after_s = domain.retry_after_s(wait_ms)
        if reason == "slow_mode":
            message = f"slow mode: you may post again in {self.retry_after_s} s"
        else:
            message = f"too many messages: wait {self.retry_after_s} s"
        super().__init__(message)


@dataclass
class PostLimiter:
    redis: Redis
    prefix: str
    capacity: int
    refill_per_s: float

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(_POST)

    async def spend(self, *, user_id: str, stream_id: UUID, slow_mode_s: int) -> None:
        """Count one message of `user_id` in `stream_id`, or raise `TooFast`.

        If Redis is away the chat stays open (flood protection fails open) and says so in the log.
        """
        keys = [
            # One hash slot per user ({...}), so the script also runs on a Redis Cluster.
            f"{self.prefix}chat:{{{user_id}}}:bucket",
            f"{self.prefix}chat:{{{user_id}}}:last:{stream_id}",
        ]
        args = [self.capacity, self.refill_per_s, slow_mode_s * 1000, domain.SLOW_MODE_MAX_S * 1000]
        try:
            allowed, wait_ms, reason = await self._script(keys=keys, args=args)
        except RedisError as error:
            log.warning("chat limits unavailable, letting a message through: %s", error)
            return
        if not int(allowed):
            raise TooFast(reason=str(reason), wait_ms=int(wait_ms))
