"""`make bench` (audience): a crowd joins one gateway, then the gateway dies. What the bus carries
for them, and what analytics ends up saying, against the truth.

The whole system runs as `make dev` starts it (`bench.stack`). N viewers open websockets to the
one gateway of a live on air and watch for `--watch` seconds; then the gateway is killed (SIGKILL:
no `viewer.left` from it) and the viewers' sockets die with it. Analytics must find out by itself
(their presence expires, its sweep closes each view with an estimate) and converge: no one
watching, every view closed. The run then goes on for `--after` seconds to show nothing more is
published. From the live's `viewer.*` events in JetStream: messages per view, which must be at
most 2 (one joined, one left, whoever sent it), and the copies of any. From analytics: views,
unique viewers, peak, closed views and watch time, against what the viewers did.

    uv run python -m bench.audience --viewers 10000 --client-processes 2
"""

import argparse
import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import nats
import orjson

from bench.cases import add_name_argument, run_case
from bench.fleet import Fleet
from bench.report import render
from bench.stack import HOST, admin_token, create_live, running_system


async def viewer_events(env: dict[str, str], stream_id: str) -> list[dict[str, Any]]:
    """Every `viewer.*` envelope of the live stored in JetStream, in order."""
    nc = await nats.connect(env["nats_url"])
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            f"{env['subject_root']}.{stream_id}.viewer.>", stream=env["jetstream_stream"]
        )
        envelopes: list[dict[str, Any]] = []
        while True:
            try:
                batch = await sub.fetch(1000, timeout=2)
            except TimeoutError:
                return envelopes
            envelopes += [orjson.loads(msg.data) for msg in batch]
            for msg in batch:
                await msg.ack()
    finally:
        await nc.close()


def watched_until(envelopes: list[dict[str, Any]], *, ended_at: float) -> float:
    """The truth: seconds watched by all, each from its gateway's `viewer.joined` (stamped when
    the socket joined) to `ended_at` (wall clock), when the gateway died under it."""
    return sum(
        ended_at - datetime.fromisoformat(envelope["occurred_at"]).timestamp()
        for envelope in envelopes
        if envelope["type"] == "viewer.joined"
    )


def per_view(envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    """Messages per view (a socket: its session id), and how many views got copies."""
    kinds: Counter[tuple[str, str]] = Counter()
    messages: Counter[str] = Counter()
    for envelope in envelopes:
        kinds[(envelope["type"], envelope["producer"])] += 1
        messages[envelope["data"]["session_id"]] += 1
    ids = Counter(envelope["id"] for envelope in envelopes)
    return {
        "messages": len(envelopes),
        "by_kind": {f"{kind} by {producer}": n for (kind, producer), n in kinds.items()},
        "views": len(messages),
        "max_per_view": max(messages.values(), default=0),
        "views_over_2": sum(1 for n in messages.values() if n > 2),
        "same_id_twice": sum(n - 1 for n in ids.values() if n > 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    token = admin_token()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        running_system() as (env, system, _),
        httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway,
        httpx.AsyncClient(base_url=system.url("analytics"), timeout=30) as analytics,
    ):
        stream_id = await create_live(gateway, token=token, title="Audience", start=True)

        async def figures() -> dict[str, Any]:
            answer = await analytics.get(
                f"/api/live/streams/{stream_id}/analytics", headers=headers
            )
            answer.raise_for_status()
            viewers: dict[str, Any] = answer.json()["viewers"]
            return viewers

        async def until(done: Any, *, timeout_s: float, what: str) -> float:
            started = time.monotonic()
            while not done(await figures()):
                if time.monotonic() - started > timeout_s:
                    raise RuntimeError(f"{what}: not after {timeout_s:.0f} s: {await figures()}")
                await asyncio.sleep(0.5)
            return time.monotonic() - started

        fleet = Fleet(args.client_processes)
        try:
            print(f"{args.viewers:,} viewers joining", flush=True)
            opening = time.monotonic()
            opened = await fleet.open(
                host=HOST,
                port=system.ports["gateway"],
                path=f"/ws/live/{stream_id}",
                count=args.viewers,
                samples=0,
            )
            all_in = time.monotonic()
            views = opened["opened"]
            counted_s = await until(
                lambda v: v["current"] >= views and v["total_views"] >= views,
                timeout_s=args.timeout,
                what="analytics counting the crowd",
            )
            await asyncio.sleep(args.watch)
            print("killing the gateway", flush=True)
            killed_at = time.time()
            system.stop("gateway", kill=True)
        finally:
            await fleet.close()
        converged_s = await until(
            lambda v: v["current"] == 0 and v["completed_views"] >= views,
            timeout_s=args.timeout,
            what="analytics closing the dead gateway's views",
        )
        at_convergence = per_view(await viewer_events(env, stream_id))
        await asyncio.sleep(args.after)
        envelopes = await viewer_events(env, stream_id)
        after = per_view(envelopes)
        final = await figures()
    return {
        "joining": {"opened": views, "failed": opened["failed"], "seconds": all_in - opening},
        "counted_s": counted_s,
        "converged_s": converged_s,
        "events_at_convergence": at_convergence,
        "events": after,
        "analytics": final,
        "truth": {
            "views": views,
            "unique_viewers": views,
            "peak": views,
            "watch_time_s": watched_until(envelopes, ended_at=killed_at),
        },
    }


COLUMNS = (
    ("figure", "{figure}"),
    ("truth", "{truth}"),
    ("analytics", "{analytics}"),
)


def table(document: dict[str, Any]) -> str:
    truth, said, events = document["truth"], document["analytics"], document["events"]
    rows = [
        {
            "figure": "views",
            "truth": f"{truth['views']:,}",
            "analytics": f"{said['total_views']:,}",
        },
        {
            "figure": "unique viewers",
            "truth": f"{truth['unique_viewers']:,}",
            "analytics": f"{said['unique_viewers']:,}",
        },
        {"figure": "peak", "truth": f"{truth['peak']:,}", "analytics": f"{said['peak']:,}"},
        {"figure": "watching after", "truth": "0", "analytics": f"{said['current']:,}"},
        {
            "figure": "closed views",
            "truth": f"{truth['views']:,}",
            "analytics": f"{said['completed_views']:,}",
        },
        {
            "figure": "watch time (s)",
            "truth": f"{truth['watch_time_s']:,.0f}",
            "analytics": f"{said['total_watch_time_s']:,.0f}",
        },
    ]
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(events["by_kind"].items()))
    return (
        f"{document['joining']['opened']:,} viewers joined in "
        f"{document['joining']['seconds']:.1f} s ({document['joining']['failed']} failed), all "
        f"counted {document['counted_s']:.1f} s later; the gateway killed, analytics converged in "
        f"{document['converged_s']:.1f} s\n"
        + render(rows, COLUMNS)
        + f"\n\nviewer.* in JetStream: {events['messages']:,} for {events['views']:,} views "
        f"({events['messages'] / max(events['views'], 1):.2f} per view, at most "
        f"{events['max_per_view']}; {events['views_over_2']} views over 2; "
        f"{events['same_id_twice']} stored twice under one id); "
        f"{document['events_at_convergence']['messages']:,} at convergence\n{kinds}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--watch", type=float, default=5.0, help="seconds watched before the kill")
    parser.add_argument("--after", type=float, default=30.0, help="seconds watched after")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per wait at most")
    add_name_argument(parser, name="audience")
    return parser.parse_args(argv)


def main() -> None:
    run_case(run, parse_args(), table)


if __name__ == "__main__":
    main()
