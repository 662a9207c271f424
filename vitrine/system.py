"""The whole system as separate processes, one per service, as `make dev` runs it."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vitrine.services import SERVICES, spec


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class System:
    """Services started with `vitrine serve <name>`, each on its own port."""

    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    host: str = "127.0.0.1"
    per_service: dict[str, dict[str, str]] = field(default_factory=dict)  # env of one service only
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}"

    def service_env(self, name: str) -> dict[str, str]:
        env = {**os.environ, **self.env}
        for other in SERVICES:
            if (url_env := spec(other).url_env) is not None:
                env[url_env] = self.url(other)
        env[spec(name).port_setting.upper()] = str(self.ports[name])
        return {**env, **self.per_service.get(name, {})}

    def start(self, *names: str, timeout_s: float = 30.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names or tuple(SERVICES):
            log = (self.log_dir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "vitrine.cli", "serve", name, "--host", self.host],
                env=self.service_env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.wait_healthy(name, timeout_s=timeout_s)

    def wait_healthy(self, name: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log_dir / name}.log")
            try:
                if httpx.get(f"{self.url(name)}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer /healthz in {timeout_s}s")

    def stop(self, *names: str, kill: bool = False) -> None:
        for name in names or tuple(reversed(self.processes)):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
