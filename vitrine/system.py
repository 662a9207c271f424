"""The whole system as separate processes, one per service, as `make dev` runs it."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vitrine.lifeline import ProcessGroup
from vitrine.progress import Progress
from vitrine.services import SERVICES, spec

# However busy the machine, a service that works (CPU, log lines) is waited for this long; one
# that does nothing for STALL_S is not.
START_TIMEOUT_S = 900.0
STALL_S = 120.0
NOTE_EVERY_S = 10.0  # a line on what is still starting, so a slow start is never silent


# Ports this process has handed out: bind(0) may give the same port twice in a row (seen: an
# nginx given one port for RTMP and HTTP), and none of them is listening yet when the next is asked.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on right now, and not one this process handed out before."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_ports(names: Iterable[str]) -> dict[str, int]:
    """A distinct free port for each name."""
    return {name: free_port() for name in names}


class ServiceFailed(RuntimeError):
    """A service did not start: why, and the end of its log."""

    def __init__(self, name: str, why: str, progress: Progress) -> None:
        super().__init__(
            f"{name} did not start: {why}. The last lines of its log, {progress.log_path}:\n"
            f"{progress.tail()}"
        )
        self.name = name
        self.log_path = progress.log_path


@dataclass
class System:
    """Services started with `vitrine serve <name>`, each on its own port."""

    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    host: str = "127.0.0.1"
    per_service: dict[str, dict[str, str]] = field(default_factory=dict)  # env of one service only
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    group: ProcessGroup | None = None  # `vitrine dev`'s: the services die with it

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}"

    def log_path(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def service_env(self, name: str) -> dict[str, str]:
        env = {**os.environ, **self.env}
        for other in SERVICES:
            if (url_env := spec(other).url_env) is not None:
                env[url_env] = self.url(other)
        env[spec(name).port_setting.upper()] = str(self.ports[name])
        return {**env, **self.per_service.get(name, {})}

    def start(
        self,
        *names: str,
        timeout_s: float = START_TIMEOUT_S,
        stall_s: float = STALL_S,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        """Start the services (all by default) at once and wait until each answers `/healthz`,
        for as long as it makes progress. Raises ServiceFailed (the others stopped) otherwise."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        watched: dict[str, Progress] = {}
        for name in names or tuple(SERVICES):
            watched[name] = self._spawn(name)
        try:
            self._wait_healthy(watched, timeout_s=timeout_s, stall_s=stall_s, report=report)
        except BaseException:
            self.stop(*watched)
            raise

    def _spawn(self, name: str) -> Progress:
        group = self.group.popen_kwargs() if self.group is not None else {}
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vitrine.cli", "serve", name, "--host", self.host],
                env=self.service_env(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **group,
            )
        if self.group is not None:
            self.group.joined(process.pid)
        self.processes[name] = process
        return Progress(process.pid, self.log_path(name))

    def _wait_healthy(
        self,
        watched: dict[str, Progress],
        *,
        timeout_s: float,
        stall_s: float,
        report: Callable[[str], None],
    ) -> None:
        pending = dict(watched)
        next_note = time.monotonic() + NOTE_EVERY_S
        with httpx.Client(timeout=2) as client:
            while pending:
                for name, progress in list(pending.items()):
                    returncode = self.processes[name].poll()
                    if returncode is not None:
                        raise ServiceFailed(name, f"it exited with code {returncode}", progress)
                    if _healthy(client, self.url(name)):
                        del pending[name]
                        report(f"  {name:<10} up in {progress.elapsed:4.1f} s   {self.url(name)}")
                        continue
                    if (idle := progress.check()) > stall_s:
                        raise ServiceFailed(name, f"it did nothing for {idle:.0f} s", progress)
                    if progress.elapsed > timeout_s:
                        raise ServiceFailed(name, f"not up after {timeout_s:.0f} s", progress)
                if pending and time.monotonic() >= next_note:
                    next_note += NOTE_EVERY_S
                    waiting = ", ".join(
                        f"{name} ({progress.elapsed:.0f} s)" for name, progress in pending.items()
                    )
                    report(f"  still starting: {waiting}")
                time.sleep(0.2)

    def stop(self, *names: str, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Stop the services (all by default) together; one that takes over `timeout_s` is
        killed."""
        stopping = [
            process
            for name in names or tuple(reversed(self.processes))
            if (process := self.processes.pop(name, None)) is not None
        ]
        for process in stopping:
            if process.poll() is not None:
                continue
            if kill:
                process.kill()
            else:
                process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in stopping:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False
