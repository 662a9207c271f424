"""`make bench`: how many messages a second one gateway process fans out, and how late.

The whole path runs for real, isolated like a test run: the streams service and the gateway as
`make dev` starts them (`vitrine.system.System`), events written through the outbox by `PUT
/api/live/streams/{id}`, thousands of websocket viewers in a separate process. The same workload
then runs against `bench.naive_gateway` (an `await ws.send_text` loop), so each figure has a
baseline measured on the same machine, in the same minute.

    uv run python -m bench.fanout --viewers 1000,5000 --seconds 10 --rate 50
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.cases import add_viewer_arguments, run_case
from bench.fleet import Fleet
from bench.isolation import process_env
from bench.publisher import publish_updates
from bench.report import SERVERS_AROUND, cpu_seconds, percentile, pids_named, table
from bench.stack import HOST, running_system
from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from vitrine.system import free_port


def start_naive_gateway(env: dict[str, str], *, port: int, log_dir: Path) -> subprocess.Popen:
    log = (log_dir / "naive_gateway.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.naive_gateway", "--host", HOST, "--port", str(port)],
        env={**os.environ, **process_env(env)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the naive gateway exited; see {log_dir}/naive_gateway.log")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the naive gateway did not answer /healthz in 30s")


async def measure(
    args: argparse.Namespace,
    *,
    server: str,
    server_pid: int,
    port: int,
    viewers: int,
    http: httpx.AsyncClient,
    stream_id: str,
    token: str,
) -> dict[str, Any]:
    """Open the viewers, publish for `args.seconds`, and see what reached them."""
    fleet = Fleet(args.client_processes)
    try:
        opened = await fleet.open(
            host=HOST, port=port, path=f"/ws/live/{stream_id}", count=viewers, samples=args.samples
        )
        print(
            f"  {server}: {opened['opened']:,} viewers open in {opened['seconds']:.1f}s", flush=True
        )
        await asyncio.sleep(args.settle)  # joins, presence writes and snapshots die down
        around = pids_named(*SERVERS_AROUND)
        watched = {"server": [server_pid], "around": around, "bench": [os.getpid()]}
        cpu_before = {key: sum(map(cpu_seconds, pids)) for key, pids in watched.items()}
        await fleet.start()
        published = await publish_updates(
            http=http,
            stream_id=stream_id,
            token=token,
            rate=args.rate,
            seconds=args.seconds,
            label=f"{server} {viewers}",
        )
        frames = await fleet.count()
        cpu = {k: sum(map(cpu_seconds, pids)) - cpu_before[k] for k, pids in watched.items()}
        await asyncio.sleep(args.drain)  # late frames still give their latency
        seen = await fleet.stop()
    finally:
        await fleet.close()
    window = published["seconds"]
    latencies = seen["latencies_ms"]
    due = viewers * published["sent"]
    return {
        "viewers": viewers,
        "server": server,
        "opened": opened,
        "msgs_per_s": frames / window,
        "delivered_pct": 100 * frames / due if due else 0.0,
        "frames": frames,
        "frames_after_drain": seen["frames"],
        "latency_ms": {
            "samples": len(latencies),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=None),
        },
        "dropped": seen["dropped"],
        "close_codes": seen["close_codes"],
        "sampled_frame_types": seen["types"],
        "publish": published,
        "publish_rate": published["rate"],
        "server_cpu_pct": 100 * cpu["server"] / window,
        "viewers_cpu_pct": 100 * seen["cpu_s"] / (window + args.drain),
        "around_cpu_pct": 100 * cpu["around"] / window,
        "bench_cpu_pct": 100 * cpu["bench"] / window,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with running_system() as (env, system, log_dir):
        naive_port = free_port()
        naive = start_naive_gateway(env, port=naive_port, log_dir=log_dir)
        servers = {
            "vitrine": (system.processes["gateway"].pid, system.ports["gateway"]),
            "naive": (naive.pid, naive_port),
        }
        token = issue_token(secret=INSECURE_JWT_SECRET, user_id="bench", name="Bench", role="admin")
        try:
            # The live is created through the gateway; updates go where --publish-via says.
            async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as http:
                created = await http.post(
                    "/api/live/streams",
                    json={"title": "Bench live"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                created.raise_for_status()
                stream_id = created.json()["id"]
                http.base_url = httpx.URL(system.url(args.publish_via))
                for viewers in args.viewers:
                    for server in args.servers:
                        pid, port = servers[server]
                        print(f"{viewers:,} viewers → {server}", flush=True)
                        rows.append(
                            await measure(
                                args,
                                server=server,
                                server_pid=pid,
                                port=port,
                                viewers=viewers,
                                http=http,
                                stream_id=stream_id,
                                token=token,
                            )
                        )
        finally:
            naive.terminate()
            try:
                naive.wait(10)
            except subprocess.TimeoutExpired:  # still writing out its backlog: the figures are in
                naive.kill()
                naive.wait()
    return {
        "config": {**vars(args), "cpus": os.cpu_count(), "log_dir": str(log_dir)},
        "results": rows,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1000,5000", help="comma-separated socket counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    parser.add_argument("--rate", type=float, default=50.0, help="events published per second")
    parser.add_argument(
        "--publish-via",
        choices=("gateway", "streams"),
        default="gateway",
        help="where the PUTs go: through the gateway under test, or straight to the service",
    )
    parser.add_argument("--servers", default="vitrine,naive", help="vitrine, naive or both")
    add_viewer_arguments(parser, name="fanout")
    args = parser.parse_args(argv)
    args.viewers = [int(n) for n in args.viewers.split(",")]
    args.servers = args.servers.split(",")
    return args


def main() -> None:
    run_case(run, parse_args(), lambda document: table(document["results"]))


if __name__ == "__main__":
    main()
