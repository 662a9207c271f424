"""What every `make bench` case shares: the viewer-side options, and running the case, printing its
table and keeping its figures in `bench/results/<name>.json`."""

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bench.client import raise_open_files_limit
from bench.report import write_json
from bench.stack import RESULTS

Document = dict[str, Any]


def add_viewer_arguments(parser: argparse.ArgumentParser, *, name: str) -> None:
    """Options of the cases that open websocket viewers."""
    parser.add_argument("--samples", type=int, default=50, help="viewers that decode frames")
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between join and run")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait for late frames")
    add_name_argument(parser, name=name)


def add_name_argument(parser: argparse.ArgumentParser, *, name: str) -> None:
    parser.add_argument("--name", default=name, help="results go to bench/results/<name>.json")


def run_case(
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, Document]],
    args: argparse.Namespace,
    render: Callable[[Document], str],
) -> None:
    """Run one case; its document gets the run's wall time and the machine's load around it
    (other work on the machine shows there; the run itself adds about 1-2)."""
    raise_open_files_limit()  # inherited by the services started from here
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    document = asyncio.run(run(args))
    config = document.setdefault("config", {**vars(args), "cpus": os.cpu_count()})
    config["wall_s"] = round(time.monotonic() - started, 1)
    config["loadavg_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    print()
    print(render(document))
    out = RESULTS / f"{args.name}.json"
    write_json(out, document)
    print(f"\nwritten to {out} in {config['wall_s']}s")
