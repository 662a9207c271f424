"""`make bench` (chat): a busy chat fanned out to N viewers of one gateway.

The whole system runs as `make dev` starts it (`bench.stack`). `--posters` distinct signed-in
users take turns posting through the gateway (`POST /api/live/chat`) at `--rate` messages a
second, for `--seconds`; each accepted message becomes a `chat.posted` event that the gateway
fans out to every viewer. Every viewer socket counts the `chat.posted` frames it receives (read
from each frame's first bytes); the sampled viewers time them: receive time minus the envelope's
`occurred_at` (written in the chat service's outbox transaction; same machine, same clock). Posts
refused by flood protection (429) are counted apart. No naive baseline here: the fan-out itself is
compared with one in `bench.fanout`.

    uv run python -m bench.chat --viewers 1000,5000 --rate 50 --posters 200 --seconds 10
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
from bench.report import (
    SERVERS_AROUND,
    cpu_seconds,
    ms,
    percentile,
    pids_named,
    render,
)
from bench.stack import (
    HOST,
    admin_token,
    create_live,
    running_system,
    user_token,
    wait_for,
)

WATCHED = "chat.posted"


async def post_messages(
    http: httpx.AsyncClient,
    *,
    stream_id: str,
    tokens: list[str],
    rate: float,
    seconds: float,
    label: str,
    in_flight: int,
) -> dict[str, Any]:
    """`rate` posts a second for `seconds`, the users taking turns, at most `in_flight` at once.

    With one post in flight per user (the default), each poster waits for its previous answer
    like a person would. When the service answers slower than that, sending waits for a free
    slot, so the achieved rate shows it rather than an ever-growing queue of requests.
    """
    gate = asyncio.Semaphore(in_flight)
    statuses: Counter[str] = Counter()
    took_ms: list[float] = []

    async def post(index: int) -> None:
        tick = time.perf_counter()
        try:
            answer = await http.post(
                "/api/live/chat",
                json={"stream_id": stream_id, "message": f"{label} message {index}"},
                headers={"Authorization": f"Bearer {tokens[index % len(tokens)]}"},
            )
            statuses[str(answer.status_code)] += 1
            took_ms.append((time.perf_counter() - tick) * 1000)
        except httpx.HTTPError as error:
            statuses[type(error).__name__] += 1
        finally:
            gate.release()

    started = time.perf_counter()
    tasks = []
    for index in range(int(rate * seconds)):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(post(index)))
    sending_s = time.perf_counter() - started
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    accepted = statuses["201"]
    return {
        "target_rate": rate,
        "posted": len(tasks),
        "accepted": accepted,
        "held": statuses["202"],
        "too_fast": statuses["429"],
        "statuses": dict(statuses),
        "sending_s": sending_s,
        "seconds": elapsed,
        "rate": len(tasks) / sending_s if sending_s else 0.0,
        "accepted_rate": accepted / elapsed,
        "post_p50_ms": statistics.median(took_ms) if took_ms else None,
        "post_max_ms": max(took_ms, default=None),
    }


async def measure(
    args: argparse.Namespace,
    *,
    viewers: int,
    gateway_pid: int,
    chat_pid: int,
    port: int,
    http: httpx.AsyncClient,
    stream_id: str,
    tokens: list[str],
) -> dict[str, Any]:
    fleet = Fleet(args.client_processes)
    try:
        opened = await fleet.open(
            host=HOST, port=port, path=f"/ws/live/{stream_id}", count=viewers, samples=args.samples
        )
        print(f"  {opened['opened']:,} viewers open in {opened['seconds']:.1f}s", flush=True)
        await asyncio.sleep(args.settle)
        watched_pids = {
            "gateway": [gateway_pid],
            "chat": [chat_pid],
            "around": pids_named(*SERVERS_AROUND),
            "bench": [os.getpid()],
        }
        cpu_before = {name: sum(map(cpu_seconds, pids)) for name, pids in watched_pids.items()}
        await fleet.start(latency_types=(WATCHED,), watch=WATCHED)
        posted = await post_messages(
            http,
            stream_id=stream_id,
            tokens=tokens,
            rate=args.rate,
            seconds=args.seconds,
            label=f"{viewers} viewers",
            in_flight=args.in_flight or len(tokens),
        )
        delivered = await fleet.watched()
        cpu = {
            name: sum(map(cpu_seconds, pids)) - cpu_before[name]
            for name, pids in watched_pids.items()
        }
        await asyncio.sleep(args.drain)  # late frames still give their latency
        seen = await fleet.stop()
    finally:
        await fleet.close()
    window = posted["seconds"]
    latencies = seen["latencies_ms"]
    due = opened["opened"] * posted["accepted"]
    return {
        "viewers": viewers,
        "opened": opened,
        "posters": len(tokens),
        "post": posted,
        "delivered_per_s": delivered / window,
        "delivered": delivered,
        "delivered_after_drain": seen["watched"],
        "delivered_pct": 100 * seen["watched"] / due if due else 0.0,
        "latency_ms": {
            "samples": len(latencies),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=None),
        },
        "dropped": seen["dropped"],
        "close_codes": seen["close_codes"],
        "sampled_frame_types": seen["types"],
        "gateway_cpu_pct": 100 * cpu["gateway"] / window,
        "chat_cpu_pct": 100 * cpu["chat"] / window,
        "around_cpu_pct": 100 * cpu["around"] / window,
        "bench_cpu_pct": 100 * cpu["bench"] / window,
        "viewers_cpu_pct": 100 * seen["cpu_s"] / (window + args.drain),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    per_service = {}
    if args.rate_capacity is not None:
        per_service["chat"] = {
            "CHAT_RATE_CAPACITY": str(args.rate_capacity),
            "CHAT_RATE_REFILL_PER_S": str(args.rate_refill),
        }
    async with running_system(per_service) as (_, system, log_dir):
        tokens = [user_token(f"bench-poster-{i}", f"Poster {i}") for i in range(args.posters)]
        async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as http:
            stream_id = await create_live(http, token=admin_token(), title="Bench chat", start=True)
            await wait_for(http, f"/api/live/streams/{stream_id}/chat")  # the chat knows the live
            http.base_url = httpx.URL(system.url(args.post_via))
            for viewers in args.viewers:
                print(
                    f"{viewers:,} viewers, {args.rate:g} posts/s from {args.posters} users",
                    flush=True,
                )
                rows.append(
                    await measure(
                        args,
                        viewers=viewers,
                        gateway_pid=system.processes["gateway"].pid,
                        chat_pid=system.processes["chat"].pid,
                        port=system.ports["gateway"],
                        http=http,
                        stream_id=stream_id,
                        tokens=tokens,
                    )
                )
    return {
        "config": {**vars(args), "cpus": os.cpu_count(), "log_dir": str(log_dir)},
        "results": rows,
    }


COLUMNS = (
    ("viewers", "{viewers:,}"),
    ("posts/s", "{post_rate:.1f}"),
    ("accepted", "{accepted:,}"),
    ("429", "{too_fast:,}"),
    ("other", "{other:,}"),
    ("delivered msgs/s", "{delivered_per_s:,.0f}"),
    ("of due", "{delivered_pct:.0f}%"),
    ("p50 ms", "{p50}"),
    ("p99 ms", "{p99}"),
    ("max ms", "{max}"),
    ("POST p50", "{post_p50}"),
    ("dropped", "{dropped:,}"),
    ("gateway CPU", "{gateway_cpu_pct:.0f}%"),
    ("chat CPU", "{chat_cpu_pct:.0f}%"),
    ("viewers CPU", "{viewers_cpu_pct:.0f}%"),
    ("pg+nats CPU", "{around_cpu_pct:.0f}%"),
    ("poster CPU", "{bench_cpu_pct:.0f}%"),
)


def table(rows: list[dict[str, Any]]) -> str:
    shown = [
        {
            **row,
            "post_rate": row["post"]["rate"],
            "accepted": row["post"]["accepted"],
            "too_fast": row["post"]["too_fast"],
            "other": row["post"]["posted"] - row["post"]["accepted"] - row["post"]["too_fast"],
            "p50": ms(row["latency_ms"]["p50"]),
            "p99": ms(row["latency_ms"]["p99"]),
            "max": ms(row["latency_ms"]["max"]),
            "post_p50": ms(row["post"]["post_p50_ms"]),
        }
        for row in rows
    ]
    return (
        "chat: posts through the gateway fanned out to N viewers; latency = receive - occurred_at"
        " on sampled viewers; no naive baseline (see the fan-out cases)\n" + render(shown, COLUMNS)
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1000,5000", help="comma-separated socket counts")
    parser.add_argument("--rate", type=float, default=50.0, help="chat posts per second")
    parser.add_argument("--posters", type=int, default=200, help="distinct users taking turns")
    parser.add_argument(
        "--post-via",
        choices=("gateway", "chat"),
        default="gateway",
        help="where the posts go: through the gateway under test, or straight to the chat service",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="posting time per run")
    parser.add_argument(
        "--in-flight", type=int, default=0, help="posts awaiting an answer at most (0: --posters)"
    )
    parser.add_argument(
        "--rate-capacity",
        type=int,
        default=None,
        help="CHAT_RATE_CAPACITY for the chat service (default: the service's own)",
    )
    parser.add_argument("--rate-refill", type=float, default=1.0, help="CHAT_RATE_REFILL_PER_S")
    add_viewer_arguments(parser, name="chat")
    args = parser.parse_args(argv)
    args.viewers = [int(n) for n in args.viewers.split(",")]
    return args


def main() -> None:
    run_case(run, parse_args(), lambda document: table(document["results"]))


if __name__ == "__main__":
    main()
