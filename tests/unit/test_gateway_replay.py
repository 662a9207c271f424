"""A replay's timeline from a live's featured history, in the video's own time
(services/gateway/replay.py, services/gateway/video_clock.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from contracts.products import LiveProduct
from contracts.streams import Platform, StreamStatus, StreamView
from services.gateway.replay import FeaturedPeriod, RecordingLayout, timeline, video_clock
from services.gateway.video_clock import Take, VideoClock

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


# --- in the video's own time (services/gateway/video_clock.py) ----------------------------------


def take(since: float, until: float | None, video_end_s: float | None = None) -> Take:
    return Take(started_at=at(since), ended_at=until and at(until), video_end_s=video_end_s)


def test_a_reconnect_gap_is_not_in_the_video():
    # On air from 0 to 10 s, the encoder away until 14 s, back until 20 s: 16 s of video.
    clock = VideoClock([take(0, 10), take(14, 20)], duration_s=None, ended_at=at(20))
    assert [clock.position(at(s)) for s in (-5, 0, 4, 10, 12, 14, 17, 20, 30)] == [
        0.0, 0.0, 4.0, 10.0, 10.0, 10.0, 13.0, 16.0, 16.0,
    ]  # fmt: skip
    assert clock.length_s == 16.0


def test_a_slow_encoders_take_holds_less_video_than_it_lasted():
    # Half speed: 10 s on air made 5 s of video, then 6 s made 3 s (the file's length after each).
    clock = VideoClock([take(0, 10, 5.0), take(14, 20, 8.0)], duration_s=8.0, ended_at=at(20))
    assert [clock.position(at(s)) for s in (4, 10, 12, 16, 20)] == [2.0, 5.0, 5.0, 6.0, 8.0]
    assert clock.length_s == 8.0


def test_without_measures_the_files_length_is_shared_by_how_long_each_take_lasted():
    clock = VideoClock([take(0, 10), take(14, 20)], duration_s=8.0, ended_at=at(20))
    assert [clock.position(at(s)) for s in (5, 10, 14, 17)] == [2.5, 5.0, 5.0, 6.5]


def test_a_take_whose_end_never_came_lasts_until_the_next_one_or_the_live_ends():
    clock = VideoClock([take(0, None), take(14, 20)], duration_s=None, ended_at=at(25))
    assert [clock.position(at(s)) for s in (10, 14, 20, 25)] == [10.0, 14.0, 20.0, 20.0]
    on_air = VideoClock([take(0, None)], duration_s=None, ended_at=None)
    assert on_air.position(at(42)) == 42.0 and on_air.length_s is None


def test_an_encoder_kept_on_after_the_end_is_not_in_the_timeline():
    clock = VideoClock([take(0, 40)], duration_s=40.0, ended_at=at(30))
    assert clock.position(at(35)) == 30.0


def test_cards_follow_the_picture_across_a_reconnect_and_a_slow_encoder():
    scarf, coat, hat = card("Scarf"), card("Coat"), card("Hat")
    periods = [
        period(scarf, -5, 4),  # from before the start
        period(coat, 4, 12),  # ends within the gap
        period(hat, 11, 13),  # all within the gap: never seen
        period(scarf, 13, None),  # featured in the gap: from the second take's first frame
    ]
    clock = VideoClock([take(0, 10, 5.0), take(14, 20, 8.0)], duration_s=8.0, ended_at=at(20))
    moments = timeline(stream=stream(ended_s=20), periods=periods,
                       products=[scarf, coat, hat], clock=clock)  # fmt: skip
    assert [(m.name, m.from_s, m.to_s) for m in moments] == [
        ("Scarf", 0.0, 2.0),
        ("Coat", 2.0, 5.0),
        ("Scarf", 5.0, 8.0),
    ]
    # On the wall clock, as before: the last card would start 5 s after the video ends.
    wall = timeline(stream=stream(ended_s=20), periods=periods, products=[scarf, coat, hat])
    assert [(m.from_s, m.to_s) for m in wall][-1] == (13.0, 20.0)


def test_a_recording_nobody_described_runs_from_the_lives_start_to_its_end():
    view = stream(ended_s=60)
    clock = video_clock(view, RecordingLayout())
    assert clock.length_s == 60.0 and clock.position(at(12.5)) == 12.5
    measured = video_clock(view, RecordingLayout(duration_s=30.0))
    assert measured.length_s == 30.0 and measured.position(at(12)) == 6.0
