"""Whether a starting process is getting anywhere, and what its log says when it is not.

On a busy machine a service may take minutes to start; one that works (uses CPU, writes its log)
is waited for, one that does neither for a while is not.
"""

import os
import time
from pathlib import Path


def cpu_ticks(pid: int) -> int | None:
    """CPU time the process used so far (user + system, in clock ticks), where /proc tells."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[11]) + int(fields[12])


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Progress:
    """A process and its log, watched for signs of work."""

    def __init__(self, pid: int, log_path: Path) -> None:
        self.pid = pid
        self.log_path = log_path
        self.log_offset = file_size(log_path)  # where this run's lines start
        self.started = self.last_seen = time.monotonic()
        self._seen = (cpu_ticks(pid), self.log_offset)

    def check(self) -> float:
        """Seconds since the process last did something (used CPU or logged a line)."""
        now = time.monotonic()
        seen = (cpu_ticks(self.pid), file_size(self.log_path))
        if seen != self._seen:
            self._seen, self.last_seen = seen, now
        return now - self.last_seen

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tail(self, lines: int = 20) -> str:
        """The last lines this process logged (since it was started)."""
        return log_tail(self.log_path, since=self.log_offset, lines=lines)


def log_tail(path: Path, *, since: int = 0, lines: int = 20, max_bytes: int = 64_000) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(since, file_size(path) - max_bytes))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    kept = text.splitlines()[-lines:]
    return os.linesep.join(f"    {line}" for line in kept) if kept else "    (nothing logged)"
