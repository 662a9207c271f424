"""Flood protection and slow mode, kept in Redis so every replica of the service agrees.

One Lua script checks both atomically and only then spends: a message refused by slow mode does
not cost a token, and the reverse. Every user has keys of their own, so one user's burst never
delays anyone else. The clock is Redis's (`TIME`), the same for every replica.
"""

from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis

from chassis.limits import BucketScript, retry_after_s
from services.chat import domain

# `take_tokens` is the same arithmetic as `domain.take_token`, then `domain.slow_mode_wait_ms`.
_POST = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local slow_ms = tonumber(ARGV[3])
if slow_ms > 0 then
  local last = tonumber(redis.call('GET', KEYS[2]))
  if last and last + slow_ms > now then
    return {0, last + slow_ms - now, 'slow_mode'}
  end
end
local wait_ms = take_tokens(KEYS[1], capacity, rate, 1)
if wait_ms > 0 then
  return {0, wait_ms, 'rate_limit'}
end
redis.call('SET', KEYS[2], now, 'PX', ARGV[4])
return {1, 0, 'ok'}
"""


class TooFast(Exception):
    """The user must wait before posting again (slow mode, or flood protection)."""

    def __init__(self, *, reason: str, wait_ms: int) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s(wait_ms)
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
        self._script = BucketScript(self.redis, _POST, name="chat limits")

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
        answer = await self._script.run(keys=keys, args=args)
        if answer is None:
            return
        allowed, wait_ms, reason = answer
        if not int(allowed):
            raise TooFast(reason=str(reason), wait_ms=int(wait_ms))
