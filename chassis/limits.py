"""Token buckets in Redis, for limits every replica of a process agrees on (chat's flood
protection, the gateway's reminder subscriptions).

A limit is a Lua script that starts with `BUCKETS`: `now`, in milliseconds on Redis's clock
(`TIME`, the same for every replica), and `take_tokens`, which checks and spends a bucket in
one step. Redis away, a limit fails open: the request goes through, and the log says so now and
then rather than once per request.
"""

import logging
import math
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chassis.errors import Throttled

log = logging.getLogger(__name__)

# `take_tokens(key, capacity, rate, cost)`: the bucket at `key` holds up to `capacity` tokens and
# refills at `rate` a second (a missing key is full). It answers 0 when `cost` tokens were taken
# (a negative cost gives them back), else the milliseconds until they would be, spending nothing.
BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function take_tokens(key, capacity, rate, cost)
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1])
  if tokens == nil then
    tokens = capacity
  else
    local elapsed = math.max(0, now - tonumber(state[2]))
    tokens = math.min(capacity, tokens + elapsed * rate / 1000)
  end
  if tokens < cost then
    return math.ceil((cost - tokens) * 1000 / rate)
  end
  redis.call('HSET', key, 'tokens', tostring(math.min(capacity, tokens - cost)), 'at', now)
  -- Once it would be full again the key is the same as no key.
  redis.call('PEXPIRE', key, math.ceil(capacity * 1000 / rate) + 1000)
  return 0
end
"""


def retry_after_s(wait_ms: int) -> int:
    """The `Retry-After` header: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_ms / 1000))


class BucketScript:
    """A limit's Lua script (`BUCKETS` then `body`), run so that it fails open."""

    def __init__(self, redis: Redis, body: str, *, name: str) -> None:
        self._script = redis.register_script(BUCKETS + body)
        self.name = name
        self._outage_log = Throttled(log)

    async def run(self, *, keys: list[str], args: list[Any]) -> Any | None:
        """The script's answer, or None when Redis cannot give one (let the request through)."""
        try:
            return await self._script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            self._outage_log.warning(
                "%s unavailable, letting a request through: %s", self.name, error
            )
            return None
