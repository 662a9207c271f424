"""A shoppable replay: an ended live's recording, and which product was featured when.

Composed from the streams service (the live's public view, given only for a live that ended with a
replay, and how its recording is laid out in takes) and the products service (the live's public
product cards and its featured history, on the wall clock). Each moment of the timeline is a
product card with the stretch of the video during which it was featured, in the video's own time
(services/gateway/video_clock): an encoder's reconnect gap is not in the file, and a slow
encoder's minute holds less than a minute of video.
"""

import asyncio
from datetime import datetime
from uuid import UUID

from fastapi import HTTPException
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from contracts.products import LiveProduct
from contracts.streams import StreamView
from services.gateway.upstream import Upstream
from services.gateway.video_clock import Take, VideoClock


class ReplayMoment(LiveProduct):
    """A product card, featured from `from_s` to `to_s` seconds into the replay."""

    from_s: float = Field(ge=0)
    to_s: float | None = Field(description="null: still featured (a live not ended yet)")


class Replay(BaseModel):
    stream: StreamView
    replay_url: str
    duration_s: float | None = Field(
        description="the video's length: the file's when the provider measured it"
    )
    timeline: list[ReplayMoment] = Field(description="in order; a product may come back")
    products: list[LiveProduct] = Field(
        description="the live's products; none is featured: the timeline says when each was"
    )


class FeaturedPeriod(BaseModel):
    """One stretch of the products service's featured history (the fields used here)."""

    product_id: UUID
    featured_at: datetime
    unfeatured_at: datetime | None


class RecordingLayout(BaseModel):
    """The streams service's account of a live's recording (the fields used here)."""

    duration_s: float | None = None
    takes: list[Take] = Field(default_factory=list)


_HISTORY = TypeAdapter(list[FeaturedPeriod])
_CARDS = TypeAdapter(list[LiveProduct])


async def gather_replay(*, upstream: Upstream, stream_id: str, token: str | None) -> Replay | None:
    """The replay, or None when the caller may not watch one (no such live, not ended, no
    recording). Only public views are read, so no secret can reach the answer."""
    live = f"/api/live/streams/{stream_id}"
    # The streams service first: no such replay, and the products service is not asked at all.
    status, stream = await upstream.get_json("streams", f"{live}/replay", token=token)
    if status == 404:
        return None
    if 400 <= status < 500:  # the caller's mistake (a forged token, say): said as it was
        raise HTTPException(status, stream.get("detail") if isinstance(stream, dict) else None)
    if status != 200:
        raise HTTPException(503, "the streams service cannot tell right now")
    (history_status, history), (cards_status, cards) = await asyncio.gather(
        # The caller's token: an admin may look at a replay before the products service has
        # heard that the live ended; anyone may afterwards.
        upstream.get_json("products", f"{live}/featured-history", token=token),
        upstream.get_json("products", f"{live}/products"),  # as any viewer sees them
    )
    if history_status == 404 or cards_status == 404:
        return None  # deleted meanwhile
    if history_status != 200 or cards_status != 200:
        # The products service learns that a live ended from an event: a moment after.
        raise HTTPException(503, "the replay's products are not ready yet", {"Retry-After": "1"})
    try:
        view = StreamView.model_validate(stream)
        layout = RecordingLayout.model_validate(stream.get("recording") or {})
        periods, products = _HISTORY.validate_python(history), _CARDS.validate_python(cards)
    except ValidationError:
        raise HTTPException(502, "a service answered an unexpected replay") from None
    assert view.replay_url is not None  # the streams service answers only lives with one
    clock = video_clock(view, layout)
    return Replay(
        stream=view,
        replay_url=view.replay_url,
        duration_s=clock.length_s,
        timeline=timeline(stream=view, periods=periods, products=products, clock=clock),
        products=[p.model_copy(update={"is_featured": False}) for p in products],
    )


def video_clock(stream: StreamView, layout: RecordingLayout) -> VideoClock:
    """The recording's clock from its takes; a live whose provider told of none was recorded,
    as far as anyone knows, from its start to its end."""
    if layout.takes:
        return VideoClock(layout.takes, duration_s=layout.duration_s, ended_at=stream.ended_at)
    return VideoClock.on_air(stream.started_at, stream.ended_at, layout.duration_s)


def timeline(
    *,
    stream: StreamView,
    periods: list[FeaturedPeriod],
    products: list[LiveProduct],
    clock: VideoClock | None = None,
) -> list[ReplayMoment]:
    """Each featured period as a moment of the replay, in the video's time (`clock`; the live's
    time on air without one): a period before the recording starts begins with it, one within a
    gap is not in it. Products no longer in the live (or hidden) are left out: a viewer could
    not buy them."""
    clock = clock or VideoClock.on_air(stream.started_at, stream.ended_at, None)
    if not clock.takes:
        return []
    cards = {product.product_id: product for product in products}
    moments = []
    for period in periods:
        card = cards.get(period.product_id)
        if card is None:
            continue
        until = period.unfeatured_at or stream.ended_at
        from_s = clock.position(period.featured_at)
        to_s = clock.position(until) if until is not None else None
        if to_s is not None and to_s <= from_s:
            continue  # before the recording, after it, or within a gap
        moment = {**card.model_dump(), "is_featured": True, "from_s": from_s, "to_s": to_s}
        moments.append(ReplayMoment.model_validate(moment))
    return moments


async def has_replay(*, upstream: Upstream, stream_id: str, token: str | None) -> bool:
    """Whether the caller may watch this live again (what its products' routes then accept)."""
    status, _ = await upstream.get_json(
        "streams", f"/api/live/streams/{stream_id}/replay", token=token
    )
    if status not in (200, 404):
        raise HTTPException(503, "the streams service cannot tell right now")
    return status == 200
