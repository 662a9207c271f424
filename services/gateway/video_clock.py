"""Where a moment of a live falls in its recording: the wall clock turned into the video's own
time, from the takes the streams service reports (an encoder publishing, from when to when).

The gaps between takes are not in the file (nginx-rtmp appends a reconnecting encoder to the same
recording, IVS merges its streams, Mux lists its sessions back to back), and a take may hold less
video than it lasted (a slow encoder). Where each take ends in the file is known when the file
said so (its length measured after the take), and the file's length is known at the end; in
between, the video is shared out among the takes in proportion to how long each lasted. A moment
in a gap falls where the next take starts: what was said meanwhile was never recorded.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Take:
    started_at: datetime
    ended_at: datetime | None = None  # None: still publishing, or its end never came
    video_end_s: float | None = None  # where it ends in the file, when measured


class VideoClock:
    """Positions in the recording (seconds from its first frame) of moments of the live."""

    def __init__(
        self, takes: Sequence[Take], *, duration_s: float | None, ended_at: datetime | None
    ) -> None:
        self.takes = sorted(takes, key=lambda take: take.started_at)
        self.duration_s = duration_s
        self.ended_at = ended_at
        self._spans = [self._span(i) for i in range(len(self.takes))]
        self._bounds = self._boundaries()

    @classmethod
    def on_air(
        cls, started_at: datetime | None, ended_at: datetime | None, duration_s: float | None
    ) -> "VideoClock":
        """A recording nobody described: one take, from the live's start to its end."""
        takes = [Take(started_at=started_at, ended_at=ended_at)] if started_at else []
        return cls(takes, duration_s=duration_s, ended_at=ended_at)

    def _span(self, i: int) -> tuple[datetime, datetime | None]:
        take = self.takes[i]
        end = take.ended_at
        if end is None:  # an end never reported: the next take's start, else the live's end
            end = self.takes[i + 1].started_at if i + 1 < len(self.takes) else self.ended_at
        return take.started_at, max(end, take.started_at) if end is not None else None

    def _boundaries(self) -> list[float | None]:
        """Where each take starts in the file, and where the last one ends (n + 1 points):
        measured, else shared out between the measured ones by how long the takes lasted, else
        (past the last one measured) as long as the takes lasted."""
        count = len(self.takes)
        measured: list[float | None] = [0.0, *(take.video_end_s for take in self.takes)]
        if count and measured[count] is None:
            measured[count] = self.duration_s
        walls: list[float | None] = [0.0]  # seconds of takes before each point
        for start, end in self._spans:
            before = walls[-1]
            lasted = (end - start).total_seconds() if end is not None else None
            walls.append(before + lasted if before is not None and lasted is not None else None)
        anchors = [
            (wall, bound) for wall, bound in zip(walls, measured, strict=True)
            if wall is not None and bound is not None
        ]  # fmt: skip
        return [
            bound if bound is not None else _between(anchors, wall)
            for wall, bound in zip(walls, measured, strict=True)
        ]

    @property
    def length_s(self) -> float | None:
        """The video's length: the file's, else what the takes add up to."""
        if self.duration_s is not None:
            return self.duration_s
        length = self._bounds[-1] if self.takes else None
        return round(length, 3) if length is not None else None

    def position(self, moment: datetime) -> float:
        """Seconds into the recording at which `moment` of the live is seen."""
        position = self._position(moment)
        if self.duration_s is not None:
            position = min(position, self.duration_s)
        return round(max(position, 0.0), 3)

    def _position(self, moment: datetime) -> float:
        if self.ended_at is not None:
            moment = min(moment, self.ended_at)  # an encoder kept on after the end is not shown
        bound = 0.0
        for i, (start, end) in enumerate(self._spans):
            begins = self._bounds[i]
            bound = begins if begins is not None else bound
            if moment <= start:
                return bound  # before this take (in a gap): where it starts
            if end is None or moment <= end:
                return bound + (moment - start).total_seconds() * self._rate(i)
            ends = self._bounds[i + 1]
            bound = ends if ends is not None else bound + (end - start).total_seconds()
        return bound

    def _rate(self, i: int) -> float:
        """Seconds of video per second of take i."""
        start, end = self._spans[i]
        begins, ends = self._bounds[i], self._bounds[i + 1]
        if end is None or begins is None or ends is None or end <= start:
            return 1.0
        return (ends - begins) / (end - start).total_seconds()


def _between(anchors: list[tuple[float, float]], wall: float | None) -> float | None:
    """The position at `wall` seconds of takes, between the (wall, position) points known."""
    if wall is None:
        return None
    for (wall_lo, low), (wall_hi, high) in itertools.pairwise(anchors):
        if wall_lo <= wall <= wall_hi:
            if wall_hi == wall_lo:
                return low
            return low + (wall - wall_lo) * (high - low) / (wall_hi - wall_lo)
    wall_last, last = anchors[-1]
    return last + (wall - wall_last)
