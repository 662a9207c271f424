"""A replay's timeline from a live's featured history (services/gateway/replay.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from contracts.products import LiveProduct
from contracts.streams import Platform, StreamStatus, StreamView
from services.gateway.replay import FeaturedPeriod, timeline

START = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def stream(*, ended_s: float | None) -> StreamView:
    return StreamView(
        id=uuid4(), title="Replay", platform=Platform.NGINX_RTMP, created_at=at(-60),
        updated_at=at(0), started_at=START, ended_at=None if ended_s is None else at(ended_s),
        status=StreamStatus.ENDED if ended_s is not None else StreamStatus.LIVE,
    )  # fmt: skip


def card(name: str) -> LiveProduct:
    return LiveProduct(product_id=uuid4(), name=name, price=Decimal("10"), currency="EUR")


def period(product: LiveProduct | UUID, since: float, until: float | None) -> FeaturedPeriod:
    product_id = product.product_id if isinstance(product, LiveProduct) else product
    return FeaturedPeriod(
        product_id=product_id, featured_at=at(since), unfeatured_at=until and at(until)
    )


def test_moments_count_from_the_start_and_are_clipped_to_the_time_on_air():
    scarf, coat = card("Scarf"), card("Coat")
    periods = [
        period(scarf, -30, -10),  # over before the live started: not in the replay
        period(coat, -5, 12.5),  # featured before the start: from the first second
        period(scarf, 12.5, 20),
        period(coat, 40, None),  # still featured when the live ended
        period(scarf, 70, 80),  # after the end
    ]
    moments = timeline(stream=stream(ended_s=60), periods=periods, products=[scarf, coat])
    assert [(m.name, m.from_s, m.to_s) for m in moments] == [
        ("Coat", 0.0, 12.5),
        ("Scarf", 12.5, 20.0),
        ("Coat", 40.0, 60.0),
    ]
    assert all(m.is_featured for m in moments)


def test_products_no_longer_in_the_live_are_left_out():
    scarf = card("Scarf")
    periods = [period(uuid4(), 1, 5), period(scarf, 5, 9)]
    moments = timeline(stream=stream(ended_s=10), periods=periods, products=[scarf])
    assert [(m.name, m.from_s, m.to_s) for m in moments] == [("Scarf", 5.0, 9.0)]


def test_a_product_still_featured_in_a_live_not_ended_has_no_end_yet():
    scarf = card("Scarf")
    moments = timeline(stream=stream(ended_s=None), periods=[period(scarf, 3, None)],
                       products=[scarf])  # fmt: skip
    assert [(m.from_s, m.to_s) for m in moments] == [(3.0, None)]
