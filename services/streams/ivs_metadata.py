"""Featured products inside the video: while a live is on air on AWS IVS, each `product.featured`
and `product.unfeatured` event is also inserted into its channel as timed metadata, so players
show the product in sync with the picture (the host's words and the card arrive together).

IVS takes at most 1 KB per `put_metadata` and 5 calls a second per channel: each event becomes a
compact JSON document trimmed to fit, and calls to one channel are paced (waiting, never
dropping), tried again with backoff when throttled or failing, and never sent out of order.
"""

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.runtime import Runtime
from contracts import Envelope
from contracts.products import ProductFeatured, ProductUnfeatured
from contracts.streams import Platform, StreamStatus
from services.streams.models import (
    SETTINGS_ROW_ID,
    LiveStream,
    LiveStreamSettings,
    processed_events,
)
from services.streams.pacing import ChannelPacer, Sleep
from services.streams.provider_settings import Deps, provider_of
from services.streams.providers.ivs import METADATA_MAX_BYTES, IvsError, IvsProvider

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ADD_TO_CART = "/api/live/cart/items"  # the gateway route a player posts {stream_id, product_id} to
NAME_MAX = 200
CALLS_PER_CHANNEL, PER_S = 5, 1.0  # IVS's PutMetadata quota per channel
MAX_ATTEMPTS, RETRY_BASE_S, RETRY_MAX_S = 5, 0.2, 2.0
# A featured product older than this is history, not something to show over the picture now.
MAX_AGE_S = 600.0
EVENTS = ("product.featured", "product.unfeatured")


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
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.deps = deps
        self.pacer = pacer or ChannelPacer(rate=CALLS_PER_CHANNEL, per_s=PER_S)
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._providers: dict[str, IvsProvider] = {}  # by the settings they were built from
        self._last_pushed: dict[str, datetime] = {}  # channel → when its last pushed event was
        self.pushed = 0

    async def on_product_event(self, session: AsyncSession, envelope: Envelope) -> None:
        """Push the event into the live's channel, if the live is on air on IVS. Raises (so the
        event is tried again later) only when IVS stayed unavailable through the retries."""
        metadata = timed_metadata(envelope)
        if metadata is None:
            return
        at = envelope.occurred_at
        if (datetime.now(UTC) - at).total_seconds() > MAX_AGE_S:
            return
        stream = await _live_on_ivs(session, envelope.stream_id)
        if stream is None or stream.provider_ref is None:
            return
        try:
            provider = await self._provider(session, stream)
            await self.push(provider, channel=stream.provider_ref, metadata=metadata, at=at)
        except ValueError as error:
            # Settings IVS cannot be called with (incomplete, or sealed under another
            # VITRINE_SECRET_KEY): trying again would not help.
            log.warning("timed metadata not sent to %s: %s", stream.provider_ref, error)

    async def push(
        self, provider: IvsProvider, *, channel: str, metadata: str, at: datetime
    ) -> None:
        """Insert `metadata` (the document of an event that happened `at`) into `channel`:
        paced, tried again with backoff while IVS throttles or fails, skipped if a later event
        was inserted already."""
        pace = self.pacer.channel(channel)
        async with pace.lock:
            last = self._last_pushed.get(channel)
            if last is not None and at < last:
                return  # a later event was shown already: this one would put the past back
            for attempt in range(1, self.max_attempts + 1):
                await pace.wait_turn()
                try:
                    sent = await provider.put_metadata(channel_arn=channel, metadata=metadata)
                except IvsError as error:
                    if not error.transient:
                        log.warning("IVS refused timed metadata for %s: %s", channel, error)
                        return
                    if attempt == self.max_attempts:
                        raise
                    await self._sleep(_backoff(attempt))
                    continue
                finally:
                    pace.done()
                if sent:
                    self._remember(channel, at)
                return

    def _remember(self, channel: str, at: datetime) -> None:
        self._last_pushed.pop(channel, None)
        self._last_pushed[channel] = at
        self.pushed += 1
        if len(self._last_pushed) > 1024:  # the oldest channels are long off air
            for stale in list(self._last_pushed)[:512]:
                del self._last_pushed[stale]

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
    query = sa.select(LiveStream).where(
        col(LiveStream.id) == stream_id,
        col(LiveStream.platform) == Platform.AWS_IVS,
        col(LiveStream.status) == StreamStatus.LIVE,
        col(LiveStream.provider_ref).is_not(None),
    )
    return (await session.execute(query)).scalars().first()


def _backoff(attempt: int) -> float:
    """Exponential with full jitter, so retries from replicas spread out."""
    return random.uniform(0, min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1)))


def follow_featured_products(runtime: Runtime, deps: Deps) -> FeaturedProductSync:
    """Consume the featured-product events (one durable consumer each) for the service's life."""
    sync = FeaturedProductSync(deps=deps)
    for events in EVENTS:
        runtime.consume(
            durable=f"streams-ivs-{events.replace('.', '-')}",
            events=events,
            handler=sync.on_product_event,
            processed=processed_events,
        )
    return sync
