"""Events through the real path: `PUT /api/live/streams/{id}` on the gateway, at a steady rate.

Each PUT changes the title, so the streams service records a `stream.updated` in its outbox (with
`occurred_at` set as it records it); the relay publishes it to JetStream, and the gateway under
test fans it out. Latency is therefore measured from the write to the database to the viewer.
"""

import asyncio
import statistics
import time
from typing import Any

import httpx


async def publish_updates(
    *,
    http: httpx.AsyncClient,
    stream_id: str,
    token: str,
    rate: float,
    seconds: float,
    label: str,
    in_flight: int = 32,
) -> dict[str, Any]:
    """PUT a new title `rate` times a second for `seconds`, at most `in_flight` at once.

    When the service answers slower than the pace, sending waits for a free slot, so the
    achieved rate shows it rather than an ever-growing queue of requests.
    """
    gate = asyncio.Semaphore(in_flight)
    headers = {"Authorization": f"Bearer {token}"}
    took_ms: list[float] = []
    failures: dict[str, int] = {}

    async def put(index: int) -> None:
        sent = time.perf_counter()
        try:
            answer = await http.put(
                f"/api/live/streams/{stream_id}",
                json={"title": f"{label} #{index}"},
                headers=headers,
            )
            if answer.status_code == 200:
                took_ms.append((time.perf_counter() - sent) * 1000)
            else:
                failures[f"HTTP {answer.status_code}"] = (
                    failures.get(f"HTTP {answer.status_code}", 0) + 1
                )
        except httpx.HTTPError as error:
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
        finally:
            gate.release()

    started = time.perf_counter()
    tasks = []
    for index in range(int(rate * seconds)):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(put(index)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    return {
        "target_rate": rate,
        "sent": len(took_ms),
        "failed": failures,
        "seconds": elapsed,
        "rate": len(took_ms) / elapsed,
        "put_p50_ms": statistics.median(took_ms) if took_ms else None,
        "put_max_ms": max(took_ms, default=None),
    }
