"""Sending what is due: claim, send, record — from any number of replicas.

A due message is claimed (`FOR UPDATE SKIP LOCKED`, status `sending` until a lease runs out) in
one short transaction, sent outside any transaction, and marked `sent` in another. Two replicas
never claim the same row; a replica that stops lets its messages on their way finish first, and
one that dies mid-send leaves its rows to be claimed again when the lease runs out (the only
window where a message may go twice: accepted by the server, not yet marked). Recording how it
went is tried again with a growing delay while the database refuses it (a message handed over
is never left `sending` to go again for a database hiccup), and is fenced on the claim: it only
touches the row while it is still the claim that process made (its `attempts`), so a replica
whose lease ran out and whose row another took up cannot overwrite that one's state. At most
`send_concurrency` messages are on their way at once, each bounded by the SMTP timeout, so one
slow or failing message holds back only itself; failures are tried again with a doubling delay
(at most `send_retry_max_delay_s`) for as long as the message still holds, up to
`send_give_up_after_s` past its time.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.cancellation import raise_if_cancelled
from chassis.mailer import Mailer, SendFailed
from services.notifications.letters import letter_for, push_ttl_s, still_true
from services.notifications.messages import compose, push_payload
from services.notifications.models import (
    Channel,
    DeliveryStatus,
    Kind,
    lives,
    reminder_deliveries,
    reminder_subscriptions,
)
from services.notifications.push import PushSender, SubscriptionGone
from services.notifications.settings import NotificationsSettings
from services.notifications.tokens import Signer

log = logging.getLogger(__name__)
deliveries, subscriptions = reminder_deliveries, reminder_subscriptions
RECORD_RETRY_FIRST_S, RECORD_RETRY_MAX_S = 0.1, 5.0  # recording how a message went, again
DRAIN_S = 2.0  # within the chassis' wait for background tasks to stop (3 s)

SENT = Counter(
    "vitrine_notifications_sent",
    "Messages handed to the mail server or push service",
    ["channel", "kind"],
)
FAILED = Counter(
    "vitrine_notifications_failed", "Attempts that failed", ["channel", "kind", "permanent"]
)


class Dispatcher:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        pusher: PushSender | None,
        settings: NotificationsSettings,
        signer: Signer,
    ) -> None:
        self.sessions = sessions
        self.mailer = mailer
        self.pusher = pusher
        self.settings = settings
        self.signer = signer
        self.in_flight: set[asyncio.Task[None]] = set()
        self.sent = 0

    async def run(self) -> None:
        """Send for ever; the database away only pauses it."""
        backoff = self.settings.dispatch_interval_s
        try:
            while True:
                try:
                    claimed = await self.claim_and_send()
                    backoff = self.settings.dispatch_interval_s
                except Exception as error:
                    raise_if_cancelled(error)
                    log.warning("dispatcher: %s; retrying in %.1fs", type(error).__name__, backoff)
                    claimed = 0
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                raise_if_cancelled()
                if claimed == 0 or len(self.in_flight) >= self.settings.send_concurrency:
                    await self._wait(self.settings.dispatch_interval_s)
        finally:
            # Stopping: what is on its way finishes and is recorded (else it would go again
            # once its lease ran out); only what outlasts the drain is cut off.
            if self.in_flight:
                await asyncio.wait(set(self.in_flight), timeout=DRAIN_S)
            for task in self.in_flight:
                task.cancel()

    async def _wait(self, timeout_s: float) -> None:
        """Until a message in flight is done (room for another) or the interval passes."""
        if self.in_flight:
            await asyncio.wait(
                self.in_flight, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        else:
            await asyncio.sleep(timeout_s)

    async def claim_and_send(self) -> int:
        """Claim as many due messages as there is room for and start sending them; how many."""
        room = self.settings.send_concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        claimed = await self.claim(limit=room)
        for delivery_id, attempt in claimed:
            task = asyncio.create_task(self.deliver(delivery_id, attempt))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return len(claimed)

    async def claim(self, *, limit: int) -> list[tuple[UUID, int]]:
        """The claimed rows' ids, each with its `attempts` after the claim (the claim's fence)."""
        lease = timedelta(seconds=self.settings.send_lease_s)
        now = sa.func.now()
        due = (
            sa.select(deliveries.c.id)
            .where(
                sa.or_(
                    (deliveries.c.status == DeliveryStatus.PENDING.value)
                    & (deliveries.c.due_at <= now),
                    # Its sender died (or was stopped) before saying how it went.
                    (deliveries.c.status == DeliveryStatus.SENDING.value)
                    & (deliveries.c.claimed_until < now),
                )
            )
            .order_by(deliveries.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(
                sa.update(deliveries)
                .where(deliveries.c.id.in_(sa.select(due.c.id)))
                .values(
                    status=DeliveryStatus.SENDING.value,
                    claimed_until=now + lease,
                    attempts=deliveries.c.attempts + 1,
                )
                .returning(deliveries.c.id, deliveries.c.attempts)
            )
            return [(row.id, row.attempts) for row in claimed]

    async def deliver(self, delivery_id: UUID, claimed: int) -> None:
        """Send one claimed message (`claimed`: its attempts as claimed) if it still holds, and
        record how it went."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    sa.select(
                        deliveries,
                        subscriptions.c.channel,
                        subscriptions.c.email,
                        subscriptions.c.push_endpoint,
                        subscriptions.c.push_p256dh,
                        subscriptions.c.push_auth,
                        subscriptions.c.language,
                        subscriptions.c.time_zone,
                        subscriptions.c.confirmed_at,
                        lives.c.title,
                        lives.c.status.label("live_status"),
                        lives.c.scheduled_at,
                        lives.c.replay_ready,
                    )
                    .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                    .outerjoin(lives, lives.c.stream_id == deliveries.c.stream_id)
                    .where(deliveries.c.id == delivery_id)
                )
            ).first()
        if row is None:  # unsubscribed meanwhile: nothing left to send
            return
        if row.status != DeliveryStatus.SENDING.value or row.attempts != claimed:
            return  # the lease ran out and another process took it up: theirs now
        now = datetime.now(UTC)
        if not still_true(row, now):
            await self._finish(delivery_id, claimed, status=DeliveryStatus.SKIPPED)
            return
        try:
            await self._send(row, now=now)
        except SubscriptionGone:
            await self._forget(row)
            return
        except SendFailed as error:
            await self._failed(row, reason=str(error), permanent=error.permanent)
            return
        except Exception as error:  # whatever it was, another attempt later
            await self._failed(row, reason=type(error).__name__, permanent=False)
            return
        SENT.labels(row.channel, row.kind).inc()
        self.sent += 1
        log.info("sent %s of live %s (delivery %s)", row.kind, row.stream_id, delivery_id)
        await self._finish(delivery_id, claimed, status=DeliveryStatus.SENT, sent_at=now)

    async def _send(self, row: sa.Row, *, now: datetime) -> None:
        letter = letter_for(row, public_url=self.settings.public_url, signer=self.signer)
        if row.channel == Channel.EMAIL.value:
            await self.mailer.send(compose(letter, sender=self.settings.smtp_from, now=now))
            return
        if self.pusher is None:
            raise SendFailed("Web Push is not set up (VAPID_PRIVATE_KEY)", permanent=True)
        await self.pusher.send(
            endpoint=row.push_endpoint, p256dh=row.push_p256dh, auth=row.push_auth,
            payload=push_payload(letter, now=now), ttl_s=push_ttl_s(row, now),
            urgency="normal" if row.kind == Kind.REPLAY.value else "high",
        )  # fmt: skip

    async def _forget(self, row: sa.Row) -> None:
        """The push service says the browser unsubscribed: so do we, from every live and the
        shop (one endpoint, one browser), with what was planned."""
        FAILED.labels(row.channel, row.kind, "true").inc()
        log.info("push subscription of delivery %s is gone: removed", row.id)
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.delete(subscriptions).where(subscriptions.c.recipient == row.recipient)
            )

    async def _failed(self, row: sa.Row, *, reason: str, permanent: bool) -> None:
        FAILED.labels(row.channel, row.kind, str(permanent).lower()).inc()
        now = datetime.now(UTC)
        give_up_at = (row.first_due_at or row.due_at) + timedelta(
            seconds=self.settings.send_give_up_after_s
        )
        given_up = permanent or now >= give_up_at
        log.warning(
            "%s of live %s (delivery %s) not sent, attempt %d: %s%s",
            row.kind, row.stream_id, row.id, row.attempts, reason,
            "; given up" if given_up else "",
        )  # fmt: skip
        if given_up:
            await self._finish(row.id, row.attempts, status=DeliveryStatus.FAILED, error=reason)
            return
        doubled = self.settings.send_retry_base_s * 2 ** min(row.attempts - 1, 30)
        delay = timedelta(seconds=min(doubled, self.settings.send_retry_max_delay_s))
        await self._finish(
            row.id,
            row.attempts,
            status=DeliveryStatus.PENDING,
            error=reason,
            due_at=min(now + delay, give_up_at),
        )

    async def _finish(
        self,
        delivery_id: UUID,
        claimed: int,
        *,
        status: DeliveryStatus,
        sent_at: datetime | None = None,
        error: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status.value, "claimed_until": None}
        if sent_at is not None:
            values["sent_at"] = sent_at
        if error is not None:
            values["last_error"] = error[:500]
        if due_at is not None:
            values["due_at"] = due_at
        # Tried until it is written or the lease has long run out (by then another process may
        # have taken the row up, and the fence makes this write touch nothing anyway).
        deadline = asyncio.get_running_loop().time() + 2 * self.settings.send_lease_s
        delay = RECORD_RETRY_FIRST_S
        while True:
            try:
                await self._record(delivery_id, claimed, values)
                return
            except Exception as error:
                raise_if_cancelled(error)
                if asyncio.get_running_loop().time() + delay > deadline:
                    log.error("delivery %s: its outcome could not be recorded: %s",
                              delivery_id, type(error).__name__)  # fmt: skip
                    return
                log.warning("delivery %s: recording its outcome failed (%s); again in %.1fs",
                            delivery_id, type(error).__name__, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX_S)

    async def _record(self, delivery_id: UUID, claimed: int, values: dict[str, object]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.status == DeliveryStatus.SENDING.value,
                    deliveries.c.attempts == claimed,  # still this process's claim
                )
                .values(**values)
            )
