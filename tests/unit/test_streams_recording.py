"""A live's recording as takes, pieced together from reports that come late, twice or out of
order (services/streams/recording.py)."""

from datetime import UTC, datetime, timedelta

from services.streams import recording
from services.streams.recording import Take

START = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_each_publish_is_a_take_and_the_gap_between_them_is_kept():
    kept = recording.take_started(None, at(0))
    kept = recording.take_ended(kept, at(10))
    kept = recording.take_started(kept, at(14))
    assert recording.takes(kept) == [
        Take(started_at=at(0), ended_at=at(10), video_end_s=None),
        Take(started_at=at(14), ended_at=None, video_end_s=None),
    ]


def test_late_repeated_and_reordered_reports_fall_into_their_place():
    kept = None
    for edge, second in [("end", 25), ("start", 0), ("start", 0), ("end", 10), ("start", 14),
                         ("end", 10)]:  # fmt: skip
        update = recording.take_started if edge == "start" else recording.take_ended
        kept = update(kept, at(second))
    assert [(t.started_at, t.ended_at) for t in recording.takes(kept)] == [
        (at(0), at(10)),
        (at(14), at(25)),
    ]


def test_the_files_length_after_a_take_tells_where_that_take_ends_in_it():
    kept = recording.take_started(None, at(0))
    kept = recording.take_ended(kept, at(10))
    kept = recording.file_measured(kept, at(10.5), 5.0)  # a slow encoder: 5 s in 10
    kept = recording.take_started(kept, at(12))
    # The first take's measure may come after the next take began: it is still the first's.
    kept = recording.file_measured(kept, at(12.5), 5.1)
    kept = recording.take_ended(kept, at(20))
    kept = recording.file_measured(kept, at(21), 9.0)
    assert [t.video_end_s for t in recording.takes(kept)] == [5.1, 9.0]
    assert kept["duration_s"] == 9.0


def test_a_measure_smaller_than_an_earlier_takes_end_is_dropped():
    kept = recording.take_started(None, at(0))
    kept = recording.take_ended(kept, at(10))
    kept = recording.take_started(kept, at(12))
    kept = recording.take_ended(kept, at(20))
    kept = recording.file_measured(kept, at(20.2), 9.0)
    kept = recording.file_measured(kept, at(20.5), 4.0)  # an old remux, come last
    assert [t.video_end_s for t in recording.takes(kept)] == [None, 9.0]
    assert kept["duration_s"] == 9.0


def test_a_providers_sessions_are_takes_back_to_back_in_the_file():
    kept = recording.from_sessions([(at(30), 20.0), (at(0), 25.0), (at(25), 5.0)], 50.0)
    assert recording.takes(kept) == [
        Take(started_at=at(0), ended_at=at(25), video_end_s=25.0),
        Take(started_at=at(25), ended_at=at(30), video_end_s=30.0),
        Take(started_at=at(30), ended_at=at(50), video_end_s=50.0),
    ]
    assert kept["duration_s"] == 50.0


def test_a_flapping_encoder_cannot_grow_the_recording_without_end():
    kept = None
    for second in range(recording.MAX_EDGES + 10):
        kept = recording.take_started(kept, at(second))
    assert kept is not None and len(kept["edges"]) == recording.MAX_EDGES
