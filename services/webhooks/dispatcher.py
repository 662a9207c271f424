"""The deliveries' worker: claims what is due, attempts it, records the outcome, retries with
backoff, gives up, disables an endpoint that keeps failing, and prunes the delivery log.

Claims are leases in PostgreSQL (FOR UPDATE SKIP LOCKED, `claimed_until`), so replicas share
the work and a crashed process's claims are taken up again; no connection is held while an
endpoint answers. One endpoint has at most WEBHOOKS_CONCURRENCY_PER_ENDPOINT attempts in flight,
so a receiver that hangs cannot take every slot. Only the oldest
pending delivery of each (endpoint, live) may be claimed: a live's next event waits until the
one before it is delivered or given up.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter as Metric
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.secrets import SecretBox
from services.webhooks.alerts import Alerts
from services.webhooks.models import DeliveryStatus, deliveries
from services.webhooks.outcomes import record_outcome
from services.webhooks.sender import Outcome, Sender

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
ATTEMPTS = Metric("vitrine_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])

CLAIM = sa.text("""
WITH due AS (
    SELECT d.id,
           (SELECT count(*) FROM deliveries c
            WHERE c.endpoint_id = d.endpoint_id AND c.status = 'pending'
              AND c.claimed_until >= now()) AS busy
    FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.status = 'enabled'
      AND (d.claimed_until IS NULL OR d.claimed_until < now())
      -- an endpoint with every slot taken is skipped here, not left to fill the LIMIT
      AND (SELECT count(*) FROM deliveries c
           WHERE c.endpoint_id = d.endpoint_id AND c.status = 'pending'
             AND c.claimed_until >= now()) < :cap
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.stream_id = d.stream_id
            AND p.status = 'pending' AND p.id < d.id)
    ORDER BY d.next_attempt_at, d.id
    LIMIT :n
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries AS d SET claimed_until = now() + make_interval(secs => :lease)
FROM due, endpoints AS e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.attempts, due.busy, e.url, e.secret,
          e.previous_secret, e.previous_secret_until
""")


class Dispatcher:
    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], sender: Sender, box: SecretBox,
        alerts: Alerts, settings: Any,
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.sender = sender
        self.box = box
        self.alerts = alerts
        self.settings = settings
        self.woken = asyncio.Event()
        self.in_flight: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """Something may be due now (an event queued, a delivery finished)."""
        self.woken.set()

    async def run(self) -> None:
        backoff, pruned_at = 0.2, 0.0
        try:
            while True:
                self.woken.clear()
                try:
                    free = self.settings.webhooks_concurrency - len(self.in_flight)
                    if free > 0:
                        for claimed in await self._claim(free):
                            self._start(claimed)
                    if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                        await self.prune()
                        pruned_at = time.monotonic()
                    backoff = 0.2
                except Exception as error:  # the database away: try again shortly
                    log.warning("webhooks dispatcher: %s; retrying in %.1fs", error, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.woken.wait(), self.settings.webhooks_poll_interval_s
                    )
        finally:
            await self._release()

    def _start(self, claimed: Any) -> None:
        task = asyncio.create_task(self._deliver(claimed), name=f"webhook-delivery-{claimed.id}")
        self.in_flight[claimed.id] = task
        task.add_done_callback(lambda _: self.in_flight.pop(claimed.id, None))

    async def _release(self) -> None:
        """On the way out: stop the attempts under way and hand their deliveries back at once
        (not when their leases run out), to be attempted again by the next process."""
        unfinished = dict(self.in_flight)
        for task in unfinished.values():
            task.cancel()
        await asyncio.gather(*unfinished.values(), return_exceptions=True)
        if not unfinished:
            return
        with contextlib.suppress(Exception):
            async with self.sessions() as session, session.begin():
                await session.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.id.in_(list(unfinished)),
                        deliveries.c.status == DeliveryStatus.PENDING.value,
                    )
                    .values(claimed_until=None)
                )

    async def _claim(self, n: int) -> list[Any]:
        """Up to `n` due deliveries, no endpoint past its share of attempts in flight (what a
        claim takes beyond it goes back at once, in the same transaction)."""
        cap = self.settings.webhooks_concurrency_per_endpoint
        async with self.sessions() as session, session.begin():
            lease = self.settings.webhooks_lease_s
            rows = await session.execute(CLAIM, {"n": n, "lease": lease, "cap": cap})
            kept: list[Any] = []
            extra: list[Any] = []
            taken = Counter[Any]()
            for row in sorted(rows, key=lambda row: row.id):
                taken[row.endpoint_id] += 1
                (kept if row.busy + taken[row.endpoint_id] <= cap else extra).append(row)
            if extra:
                await session.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.id.in_([row.id for row in extra]))
                    .values(claimed_until=None)
                )
            return kept

    def _secrets(self, claimed: Any) -> list[str]:
        secrets = [self.box.open(claimed.secret)]
        until = claimed.previous_secret_until
        if claimed.previous_secret and until is not None and until > datetime.now(UTC):
            secrets.append(self.box.open(claimed.previous_secret))
        return secrets

    async def _deliver(self, claimed: Any) -> None:
        try:
            secrets = self._secrets(claimed)
        except ValueError as unreadable:  # VITRINE_SECRET_KEY changed: a failed attempt, said so
            outcome = Outcome(datetime.now(UTC), None, f"not sent: {unreadable}; rotate it", 0)
        else:
            outcome = await self.sender.attempt(
                url=claimed.url, event_id=str(claimed.event_id), body=claimed.body,
                secrets=secrets,
            )  # fmt: skip
        ATTEMPTS.labels("delivered" if outcome.delivered else "failed").inc()
        for pause in (0.5, 1.0, 2.0, 4.0, None):
            try:
                disabled = await record_outcome(
                    sessions=self.sessions, settings=self.settings, delivery_id=claimed.id,
                    attempt=claimed.attempts + 1, outcome=outcome,
                )  # fmt: skip
                break
            except Exception as error:  # the database away: the lease keeps it ours a while
                if pause is None:
                    log.warning("delivery %s: outcome not recorded (%s)", claimed.id, error)
                    return
                await asyncio.sleep(pause)
        if disabled is not None:
            await self.alerts.endpoint_disabled(disabled)
        self.wake()

    async def prune(self) -> None:
        """Finished deliveries (and their attempts) and handled event ids past retention."""
        before = datetime.now(UTC) - timedelta(seconds=self.settings.webhooks_log_retention_s)
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.delete(deliveries).where(
                    deliveries.c.status != DeliveryStatus.PENDING.value,
                    deliveries.c.finished_at < before,
                )
            )
            await session.execute(
                sa.text("DELETE FROM processed_events WHERE processed_at < :before"),
                {"before": before},
            )
