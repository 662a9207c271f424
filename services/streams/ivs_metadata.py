"""Featured products inside the video: while a live is on air on AWS IVS, each `product.featured`
and `product.unfeatured` event is also inserted into its channel as timed metadata, so players
show the product in sync with the picture (the host's words and the card arrive together).

IVS takes at most 1 KB per `put_metadata` and 5 calls a second per channel: each event becomes a
compact JSON document trimmed to fit, and calls to one channel are paced (waiting, never
dropping) and tried again with backoff when throttled or failing.

Both event types come through one durable consumer, which replicas share. A live's row in
`ivs_timed_metadata`, locked for the event's transaction, says which event was inserted last:
an older one is skipped, so replicas never put the past back. Only that row is locked while IVS
is called, never the live (webhooks, start and end do not wait for IVS).
"""

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.runtime import Runtime
from contracts import Envelope
from contracts.products import ProductFeatured, ProductUnfeatured
from contracts.streams import Platform, StreamStatus
from services.streams.models import (
    SETTINGS_ROW_ID,
    IvsTimedMetadata,
    LiveStream,
    LiveStreamSettings,
    processed_events,
)
from services.streams.pacing import ChannelPacer, Sleep
from services.streams.provider_settings import Deps, provider_of
from services.streams.providers import ivs
from services.streams.providers.ivs import METADATA_MAX_BYTES, IvsError, IvsProvider

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ADD_TO_CART = "/api/live/cart/items"  # the gateway route a player posts {stream_id, product_id} to
NAME_MAX = 200
CALLS_PER_CHANNEL, PER_S = 5, 1.0  # IVS's PutMetadata quota per channel
# A featured product older than this is history, not something to show over the picture now.
MAX_AGE_S = 600.0
FEATURED_EVENTS = frozenset({"product.featured", "product.unfeatured"})
# One durable for every product event (a consumer filters one subject), handling the featured
# ones; the others are acknowledged without a transaction. Keep its name: a new name is a new
# consumer, which starts again from the first event JetStream still holds.
DURABLE, EVENTS = "streams-ivs-timed-metadata", "product.>"

# --- time limits: the one place for these numbers -----------------------------------------------
# The consumer's transaction holds an event until it is acknowledged, and JetStream redelivers an
# event not acknowledged within ack_wait (30 s, chassis.consumer). Each event gets EVENT_BUDGET_S,
# half that, for everything: waiting for its live's row lock, pacing, the calls to IVS and the
# backoff between them. A call ends within about ATTEMPT_S (botocore's connect timeout, 2 s, plus
# its read timeout, 5 s: providers/ivs.py) and is begun only if it can end within the budget, so
# an unreachable IVS gets 2 calls, a throttling one up to MAX_ATTEMPTS. Once the budget is spent
# the error is raised to the consumer, which NAKs the event: it comes back after the next of
# CONSUMER_RETRY_DELAYS_S (1 s, then longer) and after CONSUMER_MAX_DELIVER failed deliveries is
# parked as a dead letter; if the error is a connection refused or reset (chassis.redelivery's
# `is_outage`), it comes back after a capped, growing delay instead and is never parked.
EVENT_BUDGET_S = 15.0
ATTEMPT_S = ivs.CONNECT_TIMEOUT_S + ivs.READ_TIMEOUT_S
MAX_ATTEMPTS, RETRY_BASE_S, RETRY_MAX_S = 5, 0.2, 2.0


# --- the document ------------------------------------------------------------------------------


def timed_metadata(envelope: Envelope) -> str | None:
    """The JSON inserted into the video for a product event (≤ 1 KB of UTF-8), or None for an
    event players need not see there."""
    payload = envelope.payload()
    head = {"v": FORMAT_VERSION, "type": envelope.type, "event_id": str(envelope.id)}
    if isinstance(payload, ProductUnfeatured):
        return _fit(head, {"id": str(payload.product_id)})
    if not isinstance(payload, ProductFeatured) or not payload.product.visible:
        return None
    product = payload.product
    card = {
        "id": str(product.product_id),
        "name": product.name[:NAME_MAX],
        "price": str(product.price),
        "live_price": str(product.live_price) if product.live_price is not None else None,
        "currency": product.currency,
        "promo_code": product.promo_code,
        "add_to_cart": ADD_TO_CART,
        "image_url": product.image_url,
        "product_url": product.product_url,
    }
    return _fit(head, {name: value for name, value in card.items() if value is not None})


def _fit(head: dict[str, Any], card: dict[str, Any], *, limit: int = METADATA_MAX_BYTES) -> str:
    """The document as it is if it fits; else without the links, then with the name cut short,
    then without the least needed fields; at worst only which product it is about."""

    def encoded(fields: dict[str, Any]) -> bytes:
        return orjson.dumps({**head, "product": fields})

    def fits(fields: dict[str, Any]) -> bool:
        return len(encoded(fields)) <= limit

    card = dict(card)
    for field in ("", "product_url", "image_url"):
        card.pop(field, None)
        if fits(card):
            return encoded(card).decode()
    for field in ("", "promo_code", "live_price", "add_to_cart"):
        card.pop(field, None)
        cut = _name_cut(card, fits)
        if cut is not None:
            return encoded(cut).decode()
    return encoded({"id": card["id"]}).decode()


def _name_cut(
    card: dict[str, Any], fits: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The card with the longest start of its name (ending in …) that fits, if one does."""
    if fits(card):
        return card
    name = card.get("name")
    if not isinstance(name, str):
        return None
    low, high, best = 1, len(name) - 1, None
    while low <= high:
        middle = (low + high) // 2
        candidate = {**card, "name": name[:middle].rstrip() + "…"}
        if fits(candidate):
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


# --- the consumer --------------------------------------------------------------------------------


class FeaturedProductSync:
    """Handles `product.featured` / `product.unfeatured` for the lives on air on IVS."""

    def __init__(
        self,
        *,
        deps: Deps,
        pacer: ChannelPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.deps = deps
        self.pacer = pacer or ChannelPacer(rate=CALLS_PER_CHANNEL, per_s=PER_S)
        self.max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        self._providers: dict[str, IvsProvider] = {}  # by the settings they were built from
        self.pushed = 0

    async def on_product_event(self, session: AsyncSession, envelope: Envelope) -> None:
        """Push the event into the live's channel, if the live is on air on IVS and no later
        event was pushed there. Raises (so the event is tried again later) only when IVS stayed
        unavailable through the event's time budget."""
        if envelope.type not in FEATURED_EVENTS:
            return
        metadata = timed_metadata(envelope)
        if metadata is None:
            return
        if (datetime.now(UTC) - envelope.occurred_at).total_seconds() > MAX_AGE_S:
            return
        deadline = self._clock() + EVENT_BUDGET_S
        stream = await _live_on_ivs(session, envelope.stream_id)
        if stream is None or stream.provider_ref is None:
            return
        order = (envelope.occurred_at, envelope.id)
        last = await _lock_last_pushed(session, stream.id, wait_s=deadline - self._clock())
        if last is not None and order <= last:
            return  # a later event is in the video already: this one would put the past back
        try:
            provider = await self._provider(session, stream)
            sent = await self.push(
                provider, channel=stream.provider_ref, metadata=metadata, deadline=deadline
            )
        except ValueError as error:
            # Settings IVS cannot be called with (incomplete, or sealed under another
            # VITRINE_SECRET_KEY): trying again would not help.
            log.warning("timed metadata not sent to %s: %s", stream.provider_ref, error)
            return
        if sent:
            await _remember_pushed(session, stream.id, order)

    async def push(
        self,
        provider: IvsProvider,
        *,
        channel: str,
        metadata: str,
        deadline: float | None = None,
    ) -> bool:
        """Insert `metadata` into `channel`: paced, tried again with backoff while IVS throttles
        or fails, as long as a call can end before `deadline` (on this object's clock; by default
        EVENT_BUDGET_S from now). True once inserted; False when the channel is off air or IVS
        refused it for good (logged); IvsError when IVS stayed unavailable until the deadline."""
        if deadline is None:
            deadline = self._clock() + EVENT_BUDGET_S
        pace = self.pacer.channel(channel)
        failure: IvsError | None = None
        async with pace.lock:
            for attempt in range(1, self.max_attempts + 1):
                if failure is not None:
                    pause = _backoff(attempt - 1)
                    if deadline - self._clock() - pause < ATTEMPT_S:
                        break
                    await self._sleep(pause)
                await pace.wait_turn()
                if deadline - self._clock() < ATTEMPT_S:
                    break
                try:
                    sent = await provider.put_metadata(channel_arn=channel, metadata=metadata)
                except IvsError as error:
                    if not error.transient:
                        log.warning("timed metadata for %s not sent, for good: %s", channel, error)
                        return False
                    failure = error
                    continue
                finally:
                    pace.done()
                self.pushed += int(sent)
                return sent
        raise failure or IvsError(
            f"no time left to insert timed metadata into {channel}", transient=True
        )

    async def _provider(self, session: AsyncSession, stream: LiveStream) -> IvsProvider:
        """A provider (and its boto3 client) per settings, not per event."""
        row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
        key = hashlib.sha256(
            orjson.dumps(
                [row.platform, row.config, row.secrets_sealed] if row else None,
                option=orjson.OPT_SORT_KEYS,
            )
        ).hexdigest()
        provider = self._providers.get(key)
        if provider is None:
            built = await provider_of(stream, session=session, deps=self.deps)
            assert isinstance(built, IvsProvider)
            self._providers = {key: built}  # settings changed: the older ones are done with
            provider = built
        return provider


async def _live_on_ivs(session: AsyncSession, stream_id: UUID) -> LiveStream | None:
    """The live if it is on air on IVS; read without a lock (IVS is called after this)."""
    query = sa.select(LiveStream).where(
        col(LiveStream.id) == stream_id,
        col(LiveStream.platform) == Platform.AWS_IVS,
        col(LiveStream.status) == StreamStatus.LIVE,
        col(LiveStream.provider_ref).is_not(None),
    )
    return (await session.execute(query)).scalars().first()


async def _lock_last_pushed(
    session: AsyncSession, stream_id: UUID, *, wait_s: float
) -> tuple[datetime, UUID] | None:
    """When and which event was inserted into the live's video last (None: none yet), its row
    locked until the transaction ends so replicas take turns; waits at most `wait_s` for it."""
    wait_ms = max(1, int(wait_s * 1000))
    await session.execute(
        sa.select(sa.func.set_config("lock_timeout", f"{wait_ms}ms", True))  # this transaction
    )
    await session.execute(
        insert(IvsTimedMetadata).values(stream_id=stream_id).on_conflict_do_nothing()
    )
    query = (
        sa.select(col(IvsTimedMetadata.occurred_at), col(IvsTimedMetadata.event_id))
        .where(col(IvsTimedMetadata.stream_id) == stream_id)
        .with_for_update()
    )
    occurred_at, event_id = (await session.execute(query)).one()
    if occurred_at is None or event_id is None:
        return None
    return occurred_at, event_id


async def _remember_pushed(
    session: AsyncSession, stream_id: UUID, order: tuple[datetime, UUID]
) -> None:
    await session.execute(
        sa.update(IvsTimedMetadata)
        .where(col(IvsTimedMetadata.stream_id) == stream_id)
        .values(occurred_at=order[0], event_id=order[1], pushed_at=datetime.now(UTC))
    )


def _backoff(attempt: int) -> float:
    """Exponential with full jitter, so retries from replicas spread out."""
    return random.uniform(0, min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1)))


def follow_featured_products(runtime: Runtime, deps: Deps) -> FeaturedProductSync:
    """Consume the featured-product events (one durable consumer, `DURABLE`) for the service's
    life."""
    sync = FeaturedProductSync(deps=deps)
    runtime.consume(
        durable=DURABLE,
        events=EVENTS,
        handler=sync.on_product_event,
        processed=processed_events,
        only=FEATURED_EVENTS,  # clicks and the rest are acknowledged without a transaction
    )
    return sync
