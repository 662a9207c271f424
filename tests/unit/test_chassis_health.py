"""Readiness rules (chassis.health): required checks fail at once, tolerated ones past a bound."""

import asyncio
import math

import pytest

from chassis import health
from chassis.health import evaluate, report, tolerated


def answering(outcomes: list[bool | Exception]):
    async def check() -> bool:
        outcome = outcomes[0] if len(outcomes) == 1 else outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return check


async def test_a_required_check_failing_makes_the_process_not_ready_at_once() -> None:
    results = await evaluate({"database": answering([False])}, service="t")
    body, status = report(results, verbose=False)
    assert status == 503
    assert body == {"status": "not ready", "checks": {"database": False}, "failing": ["database"]}


async def test_a_tolerated_check_failing_within_its_bound_leaves_the_process_degraded() -> None:
    checks = {"database": answering([True]), "nats": tolerated(answering([False]), bound_s=60)}
    body, status = report(await evaluate(checks, service="t"), verbose=True)
    assert status == 200
    assert body["status"] == "degraded" and body["failing"] == ["nats"]
    assert body["details"]["nats"] == {
        "ok": False, "required": False, "down_for_s": 0.0, "outage_bound_s": 60,
    }  # fmt: skip


async def test_a_tolerated_check_failing_past_its_bound_makes_the_process_not_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: now[0])
    nats = tolerated(answering([False, False, True, False]), bound_s=30)
    statuses = []
    for later in (0, 31, 1, 1):  # fails, still fails past the bound, comes back, fails again
        now[0] += later
        statuses.append(report(await evaluate({"nats": nats}, service="t"), verbose=False)[1])
    assert statuses == [200, 503, 200, 200]  # the outage is timed afresh after a recovery


async def test_an_infinite_bound_never_fails_readiness_and_shows_as_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: now[0])
    redis = tolerated(answering([ConnectionError("refused")]), bound_s=math.inf)
    for _ in range(3):
        body, status = report(await evaluate({"redis": redis}, service="t"), verbose=True)
        now[0] += 1e6
        assert status == 200 and body["details"]["redis"]["outage_bound_s"] is None


async def test_a_check_that_hangs_counts_as_failed_within_the_timeout() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(3600)
        return True

    started = asyncio.get_running_loop().time()
    results = await evaluate({"nats": hangs, "database": answering([True])}, service="t",
                             timeout_s=0.2)  # fmt: skip
    assert asyncio.get_running_loop().time() - started < 1
    assert results["nats"].ok is False and results["database"].ok is True
