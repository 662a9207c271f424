"""The system under test for one benchmark run: isolated settings, every service as a process.

Each benchmark module starts it the same way, `make dev` style (`vitrine.system.System`), with a
port for every service the gateway may call, and stops it (and cleans the run's data) at the end.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.isolation import isolated_env, process_env
from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from vitrine.services import SERVICES
from vitrine.system import System, free_ports

RESULTS = Path(__file__).with_name("results")
HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def running_system(
    per_service: dict[str, dict[str, str]] | None = None,
) -> AsyncIterator[tuple[dict[str, str], System, Path]]:
    """(settings, started system, log directory) of a fresh isolated run."""
    async with isolated_env() as env:
        log_dir = RESULTS / "logs" / env["run_id"]
        system = System(
            env=process_env(env),
            ports=free_ports(SERVICES),
            log_dir=log_dir,
            per_service=per_service or {},
        )
        try:
            await asyncio.to_thread(system.start)
            print(f"run {env['run_id']}: logs in {log_dir}", flush=True)
            yield env, system, log_dir
        finally:
            await asyncio.to_thread(system.stop)


def admin_token() -> str:
    return issue_token(secret=INSECURE_JWT_SECRET, user_id="bench", name="Bench", role="admin")


def user_token(user_id: str, name: str) -> str:
    return issue_token(secret=INSECURE_JWT_SECRET, user_id=user_id, name=name)


async def create_live(http: httpx.AsyncClient, *, token: str, title: str, start: bool) -> str:
    """A new live through the gateway (started when `start`); returns its id."""
    headers = {"Authorization": f"Bearer {token}"}
    created = await http.post("/api/live/streams", json={"title": title}, headers=headers)
    created.raise_for_status()
    stream_id: str = created.json()["id"]
    if start:
        started = await http.post(f"/api/live/streams/{stream_id}/start", headers=headers)
        started.raise_for_status()
    return stream_id


async def wait_for(http: httpx.AsyncClient, path: str, *, timeout_s: float = 30.0) -> None:
    """Until GET `path` answers 200 (a service learning of a live from its events)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        answer = await http.get(path)
        if answer.status_code == 200:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"GET {path} still answers {answer.status_code} after {timeout_s}s")
        await asyncio.sleep(0.1)
