"""Calls to one channel paced to what its provider accepts: waiting for a turn, never dropping."""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class ChannelPace:
    """At most `rate` calls per `per_s` seconds to one channel, counted from when each call
    finished: the provider, which counts them as they arrive, never sees more. Hold `lock`
    around a call and its retries, so calls to one channel keep their order."""

    def __init__(
        self, *, rate: int, per_s: float, clock: Callable[[], float], sleep: Sleep
    ) -> None:
        self.lock = asyncio.Lock()
        self.per_s = per_s
        self.finished: deque[float] = deque(maxlen=rate)
        self._clock = clock
        self._sleep = sleep

    async def wait_turn(self) -> None:
        """Wait (never drop) until one more call fits in the window."""
        if len(self.finished) == self.finished.maxlen:
            wait = self.finished[0] + self.per_s - self._clock()
            if wait > 0:
                await self._sleep(wait)

    def done(self) -> None:
        self.finished.append(self._clock())

    def idle(self) -> bool:
        return not self.lock.locked() and (
            not self.finished or self._clock() - self.finished[-1] > self.per_s
        )


class ChannelPacer:
    """One pace per channel, forgotten once idle."""

    def __init__(
        self,
        *,
        rate: int,
        per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        keep: int = 256,
    ) -> None:
        self._paces: dict[str, ChannelPace] = {}
        self._make = lambda: ChannelPace(rate=rate, per_s=per_s, clock=clock, sleep=sleep)
        self._keep = keep

    def channel(self, channel: str) -> ChannelPace:
        pace = self._paces.get(channel)
        if pace is None:
            if len(self._paces) >= self._keep:
                self._paces = {name: p for name, p in self._paces.items() if not p.idle()}
            pace = self._paces[channel] = self._make()
        return pace
