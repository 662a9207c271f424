"""The deliveries' worker: claims what is due, attempts it, records the outcome, retries with
backoff, gives up, disables an endpoint that keeps failing, and prunes the delivery log.

Claims are leases in PostgreSQL (FOR UPDATE SKIP LOCKED, `claimed_until`), so replicas share
the work and a crashed process's claims are taken up again; no connection is held while an
endpoint answers. One endpoint has at most WEBHOOKS_CONCURRENCY_PER_ENDPOINT attempts in flight,
so a receiver that hangs cannot take every slot. Only the oldest
pending delivery of each (endpoint, live) may be claimed: a live's next event waits until the
one before it is delivered or given up. An outcome is recorded only while the claim is still
this process's (`claimed_until` as claimed), tried again while the database refuses it until
the lease nearly runs out; a process that stops lets its attempts under way finish first. The
window where an event may go twice: a process that dies, or an attempt past the drain.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter as Metric
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.cancellation import raise_if_cancelled
from chassis.dead_letters import describe
from chassis.secrets import SecretBox
from services.webhooks.alerts import Alerts
from services.webhooks.models import DeliveryStatus, deliveries
from services.webhooks.outcomes import record_outcome
from services.webhooks.sender import Outcome, Sender

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
DRAIN_S = 2.0  # within the chassis' wait for background tasks to stop (3 s)
RECORD_RETRY_FIRST_S, RECORD_RETRY_MAX_S = 0.1, 5.0  # recording an outcome, again
LEASE_MARGIN_S = 2.0  # recording stops being tried this long before the lease runs out
ATTEMPTS = Metric("vitrine_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])

# Each part reads the pending rows once: the head of each (endpoint, live) queue, found
# walking ix_deliveries_queue; each endpoint's attempts in flight, counted once on
# ix_deliveries_claimed; and an endpoint's heads ranked, so that no more are taken than it has
# free slots (another endpoint's turn is not taken by what would go back). The locked row is
# checked again: it may have changed since it was read.
CLAIM = sa.text("""
WITH busy AS (
    SELECT endpoint_id, count(*) AS busy FROM deliveries
    WHERE status = 'pending' AND claimed_until IS NOT NULL AND claimed_until >= now()
    GROUP BY endpoint_id
), heads AS (
    SELECT DISTINCT ON (endpoint_id, stream_id) id, endpoint_id, next_attempt_at, claimed_until
    FROM deliveries WHERE status = 'pending'
    ORDER BY endpoint_id, stream_id, id
), ranked AS (
    SELECT h.id, coalesce(b.busy, 0) AS busy,
           row_number() OVER (PARTITION BY h.endpoint_id ORDER BY h.next_attempt_at, h.id) AS nth
    FROM heads h
    JOIN endpoints e ON e.id = h.endpoint_id
    LEFT JOIN busy b ON b.endpoint_id = h.endpoint_id
    WHERE e.status = 'enabled' AND h.next_attempt_at <= now()
      AND (h.claimed_until IS NULL OR h.claimed_until < now())
), due AS (
    SELECT d.id, r.busy
    FROM ranked r JOIN deliveries d ON d.id = r.id
    WHERE r.busy + r.nth <= :cap
      AND d.status = 'pending' AND d.next_attempt_at <= now()
      AND (d.claimed_until IS NULL OR d.claimed_until < now())
    ORDER BY d.next_attempt_at, d.id
    LIMIT :n
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries AS d SET claimed_until = now() + make_interval(secs => :lease)
FROM due, endpoints AS e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.attempts, d.claimed_until, due.busy, e.url,
          e.secret, e.previous_secret, e.previous_secret_until
""")


@dataclass(frozen=True)
class Claim:
    """A claimed delivery (its row as the claim returned it) and when, by this process's
    clock, its lease runs out."""

    row: Any
    lapses_at: float


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
                    raise_if_cancelled(error)
                    log.warning(
                        "webhooks dispatcher: %s; retrying in %.1fs", describe(error), backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.woken.wait(), self.settings.webhooks_poll_interval_s
                    )
        finally:
            await self._drain()

    def _start(self, claimed: Any) -> None:
        claim = Claim(claimed, lapses_at=time.monotonic() + self.settings.webhooks_lease_s)
        task = asyncio.create_task(self._deliver(claim), name=f"webhook-delivery-{claimed.id}")
        self.in_flight[claimed.id] = task
        task.add_done_callback(lambda _: self.in_flight.pop(claimed.id, None))

    async def _drain(self) -> None:
        """On the way out: the attempts under way finish and are recorded (one the receiver
        has taken is then not sent again); only those outlasting the drain are cut off, and
        their deliveries handed back at once (not when their leases run out)."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight.values()), timeout=DRAIN_S)
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

    async def _deliver(self, claim: Claim) -> None:
        claimed = claim.row
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
        disabled = await self._record(claim, outcome)
        if disabled is not None:
            await self.alerts.endpoint_disabled(disabled)
        self.wake()

    async def _record(self, claim: Claim, outcome: Outcome) -> Any | None:
        """Record the outcome, trying again while the database refuses it for as long as the
        claim is surely ours (an attempt the receiver took is then not made again)."""
        pause = RECORD_RETRY_FIRST_S
        while True:
            try:
                return await record_outcome(
                    sessions=self.sessions, settings=self.settings, delivery_id=claim.row.id,
                    claimed_until=claim.row.claimed_until, attempt=claim.row.attempts + 1,
                    outcome=outcome,
                )  # fmt: skip
            except Exception as error:
                raise_if_cancelled(error)
                if time.monotonic() + pause > claim.lapses_at - LEASE_MARGIN_S:
                    log.warning(
                        "delivery %s: outcome not recorded (%s)", claim.row.id, describe(error)
                    )
                    return None
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECORD_RETRY_MAX_S)

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
