"""A 3-node nats-server cluster of a test's own, on loopback spare ports: nodes routed to each
other, each with its JetStream store in the test's tmp directory; one may be killed and started
again on the same ports and store."""

import functools
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from tests.conftest import eventually
from vitrine import embedded
from vitrine.system import free_port

CLUSTER_NAME = "vitrine-test"


@dataclass
class NatsCluster:
    """The nodes n0, n1, n2: their client ports, route ports and stores."""

    root: Path
    clients: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    routes: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    nodes: dict[str, embedded.EmbeddedServer] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f"n{i}" for i in range(len(self.clients))]

    @property
    def client_urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.clients]

    @property
    def urls(self) -> str:
        """The client URLs, comma-separated, as NATS_URL takes them."""
        return ",".join(self.client_urls)

    def start(self, name: str) -> None:
        """Start node `name` (again: same ports, same store) and wait until it answers."""
        i = self.names.index(name)
        client, route = self.clients[i], self.routes[i]
        others = ",".join(f"nats://127.0.0.1:{r}" for r in self.routes if r != route)
        store = self.root / name
        store.mkdir(parents=True, exist_ok=True)
        argv = [str(embedded._nats_server_binary()), "-a", "127.0.0.1", "-p", str(client),
                "-js", "-sd", str(store), "--server_name", name, "--cluster_name", CLUSTER_NAME,
                "--cluster", f"nats://127.0.0.1:{route}", "--routes", others]  # fmt: skip
        self.nodes[name] = embedded._spawn(
            f"nats-{name}",
            argv,
            port=client,
            log_path=store / "nats-server.log",
            ready=functools.partial(embedded._nats_ready, "127.0.0.1", client),
        )

    def kill(self, name: str) -> None:
        """SIGKILL node `name`, as a machine that dies would leave it."""
        node = self.nodes.pop(name)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.nodes.clear()

    def log(self, name: str) -> Path:
        return self.root / name / "nats-server.log"


@asynccontextmanager
async def running_cluster(root: Path) -> AsyncIterator[NatsCluster]:
    """The three nodes started, ready once the meta leader places an R3 stream on them."""
    cluster = NatsCluster(root)
    try:
        for name in cluster.names:
            cluster.start(name)
        nc = await nats.connect(cluster.client_urls)
        try:
            await eventually(lambda: _places_3_replicas(nc.jetstream()), timeout=30, interval=0.5)
        finally:
            await nc.close()
        yield cluster
    finally:
        cluster.stop()


async def _places_3_replicas(js: JetStreamContext) -> bool:
    try:
        await js.add_stream(name="PROBE", subjects=["probe.>"], num_replicas=3)
        await js.delete_stream("PROBE")
        return True
    except Exception:
        return False


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[str]:
    """Three nats-server nodes routed to each other; yields the client URLs, comma-separated."""
    async with running_cluster(tmp_path) as started:
        yield started.urls
