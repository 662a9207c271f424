"""Who is watching now, from Redis: every gateway's viewers and the players, each person once.

The layout, shared with `services/gateway/presence.py`, is described in `contracts/presence.py`.
"""

import json
from typing import cast

from redis.asyncio import Redis

from contracts.presence import active_key, gateway_set, gateways_key, live_key
from contracts.viewers import ViewersUpdated

FIGURES_TTL_S = 7 * 24 * 3600

_COUNT = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local sources = {KEYS[2]}
for _, holder in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[2] .. holder
  if redis.call('EXISTS', key) == 1 then
    table.insert(sources, key)
  else
    redis.call('SREM', KEYS[1], holder)
  end
end
local n = redis.call('ZUNIONSTORE', KEYS[3], #sources, unpack(sources))
redis.call('DEL', KEYS[3])
return n
"""

# Keeps the highest value ever written: peak viewers.
_RAISE_PEAK = """
local peak = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(ARGV[1])
if current > peak then redis.call('SET', KEYS[1], current) return current end
return peak
"""


class Audience:
    """Reads and writes the live audience in Redis (the analytics side of presence)."""

    def __init__(self, *, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._count = redis.register_script(_COUNT)
        self._raise_peak = redis.register_script(_RAISE_PEAK)

    def key(self, stream_id: str, what: str) -> str:
        return live_key(self.prefix, stream_id, what)

    @property
    def active_key(self) -> str:
        return active_key(self.prefix)

    async def active_lives(self, *, now_s: float, within_s: float) -> list[str]:
        """Lives with presence in the last `within_s` seconds (older ones are forgotten)."""
        await self.redis.zremrangebyscore(self.active_key, "-inf", now_s - within_s)
        return cast(list[str], await self.redis.zrange(self.active_key, 0, -1))

    async def current(self, stream_id: str, *, now_ms: int) -> int:
        keys = [self.key(stream_id, w) for w in ("holders", "players", "scratch")]
        return int(await self._count(keys=keys, args=[now_ms, self.key(stream_id, "gw:")]))

    async def figures(self, stream_id: str, *, now_ms: int) -> ViewersUpdated:
        current = await self.current(stream_id, now_ms=now_ms)
        peak = await self._raise_peak(keys=[self.key(stream_id, "peak")], args=[current])
        total = await self.redis.get(self.key(stream_id, "total"))
        unique = await self.redis.pfcount(self.key(stream_id, "unique"))
        return ViewersUpdated(
            current=current, peak=int(peak), total=int(total or 0), unique=int(unique)
        )

    async def published(self, stream_id: str) -> ViewersUpdated | None:
        raw = await self.redis.get(self.key(stream_id, "figures"))
        return ViewersUpdated.model_validate(json.loads(raw)) if raw else None

    async def claim(self, stream_id: str, *, for_ms: int) -> bool:
        """One replica announces a live's figures per interval."""
        claimed = await self.redis.set(
            self.key(stream_id, "announcer"), "1", nx=True, px=max(1, for_ms)
        )
        return bool(claimed)

    async def remember(self, stream_id: str, figures: ViewersUpdated) -> None:
        await self.redis.set(
            self.key(stream_id, "figures"), figures.model_dump_json(), ex=FIGURES_TTL_S
        )

    async def player_watching(
        self, stream_id: str, *, viewer: str, until_ms: int, now_s: float, new_view: bool
    ) -> None:
        """A player's lease, extended to `until_ms` (never shortened)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key(stream_id, "players"), {viewer: until_ms}, gt=True)
            pipe.expire(self.key(stream_id, "players"), FIGURES_TTL_S)
            pipe.zadd(self.active_key, {stream_id: now_s})
            if new_view:
                pipe.incr(self.key(stream_id, "total"))
                pipe.expire(self.key(stream_id, "total"), FIGURES_TTL_S)
                pipe.pfadd(self.key(stream_id, "unique"), viewer)
                pipe.expire(self.key(stream_id, "unique"), FIGURES_TTL_S)
            await pipe.execute()

    async def player_gone(self, stream_id: str, *, viewer: str, now_s: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.key(stream_id, "players"), viewer)
            pipe.zadd(self.active_key, {stream_id: now_s})
            await pipe.execute()

    async def last_heard(self, gateway_ids: list[str]) -> dict[str, float]:
        """When each of these gateways last wrote its viewers (s), for those that ever did."""
        if not gateway_ids:
            return {}
        heard = await self.redis.zmscore(gateways_key(self.prefix), gateway_ids)
        return {g: at for g, at in zip(gateway_ids, heard, strict=True) if at is not None}

    async def held_by(self, stream_id: str, gateway_id: str, viewers: list[str]) -> list[bool]:
        """Whether each viewer key is still in the gateway's set of this live."""
        if not viewers:
            return []
        found = await self.redis.smismember(self.key(stream_id, gateway_set(gateway_id)), viewers)  # type: ignore[arg-type]
        return [bool(x) for x in found]
