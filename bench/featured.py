"""`make bench` (featured): how long after an admin features a product every viewer shows it.

The whole system runs as `make dev` starts it (`bench.stack`). A live with a few products has N
viewers on one gateway; the admin features its products in turn through the gateway (`POST
/api/live/streams/{id}/products/{product_id}/feature`), one request every `--interval` seconds.
Every viewer socket notes when each `product.featured` frame arrives (by `seq`, read from the
frame's first bytes); the sampled viewers also read which product it is, which ties each frame to
its request. Per request: time from sending it to the median viewer and to the last viewer having
the frame (same machine, same clock); then p50/p99 over the requests. No naive baseline here: the
fan-out itself is compared with one in `bench.fanout`.

    uv run python -m bench.featured --viewers 1000,5000 --requests 20 --interval 0.5
"""

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from bench.cases import add_viewer_arguments, run_case
from bench.fleet import Fleet
from bench.report import cpu_seconds, ms, percentile, render
from bench.stack import HOST, admin_token, create_live, running_system

WATCHED = "product.featured"


async def set_up_showcase(
    http: httpx.AsyncClient, *, stream_id: str, headers: dict[str, str], count: int
) -> list[str]:
    """`count` catalog products, all added to the live (visible); returns their ids."""
    ids = []
    for index in range(count):
        created = await http.post(
            "/api/catalog/products",
            json={"name": f"Bench product {index + 1}", "price": "19.90", "currency": "EUR"},
            headers=headers,
        )
        created.raise_for_status()
        product_id = created.json()["id"]
        added = await http.post(
            f"/api/live/streams/{stream_id}/products",
            json={"product_id": product_id},
            headers=headers,
        )
        added.raise_for_status()
        ids.append(product_id)
    return ids


async def feature_in_turn(
    http: httpx.AsyncClient,
    *,
    stream_id: str,
    headers: dict[str, str],
    products: list[str],
    first: int,
    requests: int,
    interval: float,
) -> list[dict[str, Any]]:
    """One feature request every `interval` seconds (each waits for the previous answer)."""
    sent: list[dict[str, Any]] = []
    started = time.perf_counter()
    for index in range(requests):
        delay = started + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        product_id = products[(first + index) % len(products)]
        at = time.time()
        tick = time.perf_counter()
        try:
            answer = await http.post(
                f"/api/live/streams/{stream_id}/products/{product_id}/feature", headers=headers
            )
            status: int | str = answer.status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        took_ms = (time.perf_counter() - tick) * 1000
        sent.append({"product_id": product_id, "sent_at": at, "status": status, "http_ms": took_ms})
    return sent


def match(
    sent: list[dict[str, Any]], arrivals: dict[int, list[float]], keys: dict[int, str]
) -> list[dict[str, Any]]:
    """Each request with the frame it caused: per product, the k-th request ↔ its k-th frame."""
    waiting: dict[str, list[dict[str, Any]]] = {}
    for request in sent:
        if request["status"] == 200:
            waiting.setdefault(request["product_id"], []).append(request)
    matched = []
    for seq in sorted(arrivals):
        product_id = keys.get(seq)
        queue = waiting.get(product_id or "")
        if not queue:
            continue  # not one of this run's requests (or no sampled viewer read it)
        request = queue.pop(0)
        times = sorted(arrivals[seq])
        matched.append(
            {
                **request,
                "seq": seq,
                "received": len(times),
                "first_ms": (times[0] - request["sent_at"]) * 1000,
                "median_ms": (times[len(times) // 2] - request["sent_at"]) * 1000,
                "last_ms": (times[-1] - request["sent_at"]) * 1000,
            }
        )
    return matched


async def measure(
    args: argparse.Namespace,
    *,
    viewers: int,
    gateway_pid: int,
    port: int,
    http: httpx.AsyncClient,
    stream_id: str,
    headers: dict[str, str],
    products: list[str],
    first: int,
) -> dict[str, Any]:
    fleet = Fleet(args.client_processes)
    try:
        opened = await fleet.open(
            host=HOST, port=port, path=f"/ws/live/{stream_id}", count=viewers, samples=args.samples
        )
        print(f"  {opened['opened']:,} viewers open in {opened['seconds']:.1f}s", flush=True)
        await asyncio.sleep(args.settle)
        cpu_before = cpu_seconds(gateway_pid)
        await fleet.start(
            latency_types=(WATCHED,), watch=WATCHED, stamp=True, key_path=("product", "product_id")
        )
        started = time.perf_counter()
        sent = await feature_in_turn(
            http,
            stream_id=stream_id,
            headers=headers,
            products=products,
            first=first,
            requests=args.requests,
            interval=args.interval,
        )
        window = time.perf_counter() - started
        cpu = cpu_seconds(gateway_pid) - cpu_before
        await asyncio.sleep(args.drain)
        seen = await fleet.stop()
    finally:
        await fleet.close()
    matched = match(sent, seen["arrivals"], seen["keys"])
    accepted = sum(1 for request in sent if request["status"] == 200)
    first_viewer = [m["first_ms"] for m in matched]
    last = [m["last_ms"] for m in matched]
    median = [m["median_ms"] for m in matched]
    http_ms = [request["http_ms"] for request in sent]
    complete = sum(1 for m in matched if m["received"] >= opened["opened"])
    return {
        "viewers": viewers,
        "opened": opened,
        "requests": len(sent),
        "accepted": accepted,
        "failed": dict(Counter(str(r["status"]) for r in sent if r["status"] != 200)),
        "matched": len(matched),
        "complete": complete,  # requests whose frame reached every open viewer
        "first_viewer_ms": {
            "p50": percentile(first_viewer, 0.50),
            "p99": percentile(first_viewer, 0.99),
        },
        "last_viewer_ms": {"p50": percentile(last, 0.50), "p99": percentile(last, 0.99)},
        "median_viewer_ms": {"p50": percentile(median, 0.50), "p99": percentile(median, 0.99)},
        "last_viewer_max_ms": max(last, default=None),
        "http_ms": {"p50": statistics.median(http_ms) if http_ms else None, "max": max(http_ms)},
        "sampled_latency_ms": {  # receive - occurred_at (the products service's outbox write)
            "samples": len(seen["latencies_ms"]),
            "p50": percentile(seen["latencies_ms"], 0.50),
            "p99": percentile(seen["latencies_ms"], 0.99),
        },
        "watched_frames": seen["watched"],
        "dropped": seen["dropped"],
        "close_codes": seen["close_codes"],
        "gateway_cpu_pct": 100 * cpu / window,
        "viewers_cpu_pct": 100 * seen["cpu_s"] / (window + args.drain),
        "per_request": [
            {
                key: m[key]
                for key in ("seq", "product_id", "received", "first_ms", "median_ms", "last_ms")
            }
            | {"http_ms": round(m["http_ms"], 1)}
            for m in matched
        ],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with running_system() as (_, system, log_dir):
        headers = {"Authorization": f"Bearer {admin_token()}"}
        async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as http:
            stream_id = await create_live(
                http, token=admin_token(), title="Bench featured", start=True
            )
            products = await set_up_showcase(
                http, stream_id=stream_id, headers=headers, count=args.products
            )
            first = 0
            for viewers in args.viewers:
                print(f"{viewers:,} viewers, {args.requests} feature requests", flush=True)
                rows.append(
                    await measure(
                        args,
                        viewers=viewers,
                        gateway_pid=system.processes["gateway"].pid,
                        port=system.ports["gateway"],
                        http=http,
                        stream_id=stream_id,
                        headers=headers,
                        products=products,
                        first=first,
                    )
                )
                first += args.requests  # a product other than the one featured last
    return {
        "config": {**vars(args), "cpus": os.cpu_count(), "log_dir": str(log_dir)},
        "results": rows,
    }


COLUMNS = (
    ("viewers", "{viewers:,}"),
    ("requests", "{accepted}/{requests}"),
    ("reached all", "{complete}/{matched}"),
    ("first viewer p50", "{first_p50}"),
    ("median viewer p50", "{median_p50}"),
    ("p99", "{median_p99}"),
    ("last viewer p50", "{last_p50}"),
    ("p99", "{last_p99}"),
    ("POST p50", "{http_p50}"),
    ("dropped", "{dropped:,}"),
    ("gateway CPU", "{gateway_cpu_pct:.0f}%"),
    ("viewers CPU", "{viewers_cpu_pct:.0f}%"),
)


def table(rows: list[dict[str, Any]]) -> str:
    shown = [
        {
            **row,
            "first_p50": ms(row["first_viewer_ms"]["p50"]),
            "median_p50": ms(row["median_viewer_ms"]["p50"]),
            "median_p99": ms(row["median_viewer_ms"]["p99"]),
            "last_p50": ms(row["last_viewer_ms"]["p50"]),
            "last_p99": ms(row["last_viewer_ms"]["p99"]),
            "http_p50": ms(row["http_ms"]["p50"]),
        }
        for row in rows
    ]
    return (
        "featured product: feature POST sent → the frame at the median / the last of N viewers"
        " (ms, p50/p99 over the requests); no naive baseline (see the fan-out cases)\n"
        + render(shown, COLUMNS)
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1000,5000", help="comma-separated socket counts")
    parser.add_argument("--products", type=int, default=5, help="products in the live")
    parser.add_argument("--requests", type=int, default=20, help="feature requests per run")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between requests")
    add_viewer_arguments(parser, name="featured")
    args = parser.parse_args(argv)
    args.viewers = [int(n) for n in args.viewers.split(",")]
    if args.products < 2:
        parser.error("--products must be at least 2 (featuring alternates between products)")
    return args


def main() -> None:
    run_case(run, parse_args(), lambda document: table(document["results"]))


if __name__ == "__main__":
    main()
