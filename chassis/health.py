"""Readiness that means "this process can serve its requests", for a Kubernetes readinessProbe.

A check is either *required* — failing it means requests fail (a service without PostgreSQL) —
or *tolerated* (`tolerated(check, bound_s=...)`): the process rides the outage out (the outbox
holds events while NATS is away, rate limits fail open while Redis is) so a failing check makes
the body say `degraded` (listing it under `failing`), shows in the `vitrine_dependency_up`
gauge, and makes the process not ready only once it has been failing for longer than its
bound. A bus blip thus never empties a Service of all its endpoints, while a process cut off
from the bus for good can still be drained.

The outage is timed from the first failing probe, so its start is known to within one probe
period. Every check has a timeout: a probe that hangs is a failed probe, never a stuck one.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

ReadinessCheck = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT_S = 2.0

DEPENDENCY_UP = Gauge(
    "vitrine_dependency_up",
    "Whether the process reached a dependency at its last readiness check (1) or not (0)",
    ["service", "dependency"],
)
DEPENDENCY_DOWN_SECONDS = Gauge(
    "vitrine_dependency_down_seconds",
    "For how long a dependency has failed its readiness check (0 while it answers)",
    ["service", "dependency"],
)


class Tolerated:
    """A readiness check whose failure the process rides out for `bound_s` seconds
    (`math.inf`: for ever; `0`: not at all). Remembers since when it has been failing."""

    def __init__(self, check: ReadinessCheck, *, bound_s: float) -> None:
        self.check = check
        self.bound_s = bound_s
        self.down_since: float | None = None

    async def __call__(self) -> bool:
        return await self.check()

    def observe(self, ok: bool, now: float) -> float:
        """Record a probe's outcome; returns for how long the check has been failing."""
        if ok:
            self.down_since = None
            return 0.0
        if self.down_since is None:
            self.down_since = now
        return now - self.down_since


def tolerated(check: ReadinessCheck, *, bound_s: float) -> Tolerated:
    return Tolerated(check, bound_s=bound_s)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    required: bool
    down_for_s: float
    bound_s: float | None

    @property
    def blocks_readiness(self) -> bool:
        if self.ok:
            return False
        return self.required or self.down_for_s >= (self.bound_s or 0.0)

    def details(self) -> dict[str, Any]:
        bound = self.bound_s if self.bound_s is None or math.isfinite(self.bound_s) else None
        return {
            "ok": self.ok,
            "required": self.required,
            "down_for_s": round(self.down_for_s, 1),
            **({} if self.required else {"outage_bound_s": bound}),
        }


async def _probe(check: ReadinessCheck, timeout_s: float) -> bool:
    try:
        return bool(await asyncio.wait_for(check(), timeout_s))
    except Exception:  # unreachable, refused, timed out: all mean "not now"
        return False


async def evaluate(
    checks: Mapping[str, ReadinessCheck], *, service: str, timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, CheckResult]:
    """Run every check side by side (each within `timeout_s`) and record the outcome."""
    names = list(checks)
    outcomes = await asyncio.gather(*(_probe(checks[name], timeout_s) for name in names))
    now = time.monotonic()
    results = {}
    for name, ok in zip(names, outcomes, strict=True):
        check = checks[name]
        if isinstance(check, Tolerated):
            down_for = check.observe(ok, now)
            results[name] = CheckResult(ok, False, down_for, check.bound_s)
        else:
            results[name] = CheckResult(ok, True, 0.0, None)
        DEPENDENCY_UP.labels(service, name).set(1 if ok else 0)
        DEPENDENCY_DOWN_SECONDS.labels(service, name).set(results[name].down_for_s)
    return results


def report(results: Mapping[str, CheckResult], *, verbose: bool) -> tuple[dict[str, Any], int]:
    """The `/readyz` body and status: 200 while ready (`ready`, or `degraded` when a tolerated
    dependency is away within its bound), 503 otherwise."""
    ready = not any(result.blocks_readiness for result in results.values())
    failing = sorted(name for name, result in results.items() if not result.ok)
    status = "not ready" if not ready else "degraded" if failing else "ready"
    body: dict[str, Any] = {
        "status": status,
        "checks": {name: result.ok for name, result in results.items()},
    }
    if failing:
        body["failing"] = failing
    if verbose:
        body["details"] = {name: result.details() for name, result in results.items()}
    return body, 200 if ready else 503
