"""Figures of a fan-out run: percentiles, CPU from /proc, the side-by-side table and its JSON."""

import json
import os
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
SERVERS_AROUND = ("postgres", "nats-server", "redis-server", "valkey-server")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def pids_named(*names: str) -> list[int]:
    """The processes of the shared servers (PostgreSQL backends, NATS, Redis)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


COLUMNS = (
    ("viewers", "{viewers:,}"),
    ("server", "{server}"),
    ("msgs/s", "{msgs_per_s:,.0f}"),
    ("of due", "{delivered_pct:.0f}%"),
    ("p50 ms", "{p50}"),
    ("p99 ms", "{p99}"),
    ("max ms", "{max}"),
    ("dropped", "{dropped:,}"),
    ("publish/s", "{publish_rate:.1f}"),
    ("server CPU", "{server_cpu_pct:.0f}%"),
    ("viewers CPU", "{viewers_cpu_pct:.0f}%"),
    ("pg+nats CPU", "{around_cpu_pct:.0f}%"),
)


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (viewers, server): what the viewers received while events were published."""
    shown = [
        {
            **row,
            "p50": _ms(row["latency_ms"]["p50"]),
            "p99": _ms(row["latency_ms"]["p99"]),
            "max": _ms(row["latency_ms"]["max"]),
        }
        for row in rows
    ]
    return render(shown, COLUMNS)


def render(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    """Right-aligned columns: (heading, format string over a row's keys) each."""
    cells = [[name for name, _ in columns]]
    for row in rows:
        cells.append([fmt.format(**row) for _, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ms(value: float | None) -> str:
    """Milliseconds for a table cell ("-" when there is nothing to show)."""
    return _ms(value)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
