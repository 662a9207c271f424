"""A live's recording as takes: each time the encoder published, and how far into the video file
each take reached. Pure functions over the JSON kept in `live_streams.recording`.

Providers tell us in pieces, late and out of order: a take starts (nginx's `on_publish`, IVS's
Stream Start) and ends (`on_publish_done`, Stream End) on the wall clock; the file reports how
long it is (record-done.sh's ffprobe after each take, IVS's recording duration); Mux's asset lists
its recording sessions outright. So every piece is kept as it came, and the takes are rebuilt from
them in time order: a repeated start or end changes nothing, and a late one falls into its place.

The replay's timeline (services/gateway/replay.py) maps wall-clock moments to positions in the
video with these takes: gaps between takes are not in the file, and a slow encoder's take holds
less video than the time it lasted.
"""

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

START, END = "start", "end"
# A flapping encoder must not grow a live's row without end: later pieces are dropped.
MAX_EDGES = 2000
MAX_MARKS = 2000

Recording = dict[str, Any]  # {"edges": [[iso, start|end]], "marks": [[iso, video_s]], "duration_s"}


@dataclass(frozen=True)
class Take:
    started_at: datetime
    ended_at: datetime | None  # None: still publishing (or its end was never reported)
    video_end_s: float | None  # where this take ends in the file, when the file said so


def _copy(recording: Recording | None) -> Recording:
    recording = recording or {}
    return {
        "edges": list(recording.get("edges") or []),
        "marks": list(recording.get("marks") or []),
        "duration_s": recording.get("duration_s"),
    }


def take_started(recording: Recording | None, at: datetime) -> Recording:
    """The encoder began to publish at `at`."""
    return _with_edge(recording, at, START)


def take_ended(recording: Recording | None, at: datetime) -> Recording:
    """The encoder stopped publishing at `at`."""
    return _with_edge(recording, at, END)


def _with_edge(recording: Recording | None, at: datetime, edge: str) -> Recording:
    updated = _copy(recording)
    if len(updated["edges"]) < MAX_EDGES:
        updated["edges"].append([at.isoformat(), edge])
    return updated


def file_measured(recording: Recording | None, at: datetime, video_s: float) -> Recording:
    """At `at`, the file held `video_s` seconds: the end of the last take over by then. The
    file's duration is the longest it was ever measured."""
    updated = _copy(recording)
    if len(updated["marks"]) < MAX_MARKS:
        updated["marks"].append([at.isoformat(), video_s])
    updated["duration_s"] = max(video_s, updated["duration_s"] or 0.0)
    return updated


def file_lasts(recording: Recording | None, duration_s: float) -> Recording:
    """The finished file is `duration_s` long (a provider's own figure)."""
    updated = _copy(recording)
    updated["duration_s"] = duration_s
    return updated


def from_sessions(sessions: list[tuple[datetime, float]], duration_s: float | None) -> Recording:
    """A recording listed by its provider as (start, seconds) sessions back to back in the file
    (Mux's `recording_times`): each is a take whose end in the file is known."""
    recording: Recording = {"edges": [], "marks": [], "duration_s": duration_s}
    position = 0.0
    for started_at, seconds in sorted(sessions)[: MAX_EDGES // 2]:
        ended_at = started_at + timedelta(seconds=seconds)
        position += seconds
        recording["edges"] += [[started_at.isoformat(), START], [ended_at.isoformat(), END]]
        recording["marks"].append([ended_at.isoformat(), round(position, 3)])
    return recording


def takes(recording: Recording | None) -> list[Take]:
    """The takes in order, each with its end in the file when a measurement tells it."""
    recording = _copy(recording)
    # At one instant an end comes before a start: back-to-back sessions stay two takes.
    edges = sorted(
        ((datetime.fromisoformat(at), edge) for at, edge in recording["edges"]),
        key=lambda item: (item[0], item[1] == START),
    )
    spans: list[tuple[datetime, datetime | None]] = []
    opened: datetime | None = None
    for at, edge in edges:
        if edge == START and opened is None:
            opened = at
        elif edge == END and opened is not None:
            spans.append((opened, at))
            opened = None
    if opened is not None:
        spans.append((opened, None))
    closed = [(ended_at, i) for i, (_, ended_at) in enumerate(spans) if ended_at is not None]
    closed_at = [ended_at for ended_at, _ in closed]
    ends: list[float | None] = [None] * len(spans)
    for at_text, video_s in recording["marks"]:
        over = bisect.bisect_right(closed_at, datetime.fromisoformat(at_text))
        if over:
            last = closed[over - 1][1]
            ends[last] = max(video_s, ends[last] or 0.0)
    return [
        Take(started_at=start, ended_at=end, video_end_s=video_end)
        for (start, end), video_end in zip(spans, _increasing(ends), strict=True)
    ]


def _increasing(ends: list[float | None]) -> list[float | None]:
    """A take cannot end earlier in the file than the one before it: such a measurement (a late
    one mistaken for another take's) is dropped."""
    kept: list[float | None] = []
    highest = 0.0
    for end in ends:
        if end is not None and end < highest:
            end = None
        if end is not None:
            highest = end
        kept.append(end)
    return kept
