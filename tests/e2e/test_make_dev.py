"""`vitrine dev` (what `make dev` runs) on a machine where nothing listens: embedded servers."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.viewer import WsViewer
from vitrine.embedded import port_open
from vitrine.system import free_port


@pytest.fixture
def dev_ports() -> dict[str, int]:
    names = ("postgres", "nats", "redis", "streams", "products", "chat", "analytics", "gateway")
    return {name: free_port() for name in names}


async def test_dev_starts_embedded_servers_serves_the_demo_and_stops_everything(
    dev_ports, tmp_path
):
    secret = "a-jwt-secret-only-this-test-knows-0123456789"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dev_ports['postgres']}/vitrine",
        "NATS_URL": f"nats://127.0.0.1:{dev_ports['nats']}",
        "REDIS_URL": f"redis://127.0.0.1:{dev_ports['redis']}/0",
        "STREAMS_PORT": str(dev_ports["streams"]),
        "PRODUCTS_PORT": str(dev_ports["products"]),
        "CHAT_PORT": str(dev_ports["chat"]),
        "ANALYTICS_PORT": str(dev_ports["analytics"]),
        "GATEWAY_PORT": str(dev_ports["gateway"]),
        "JWT_SECRET": secret,
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "vitrine.cli", "dev", "--state-dir", str(tmp_path / "state")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = dev.stdout.readline()
            assert line, "vitrine dev exited early:\n" + "".join(output)
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        for server in ("postgres", "nats", "valkey"):
            assert f"started embedded {server}" in text
        live_id = re.search(r"demo live: \S+/api/live/streams/([0-9a-f-]{36})", text).group(1)
        admin_token = text.split("admin token (12 h):\n", 1)[1].split("\n", 1)[0].strip()
        gateway = f"http://127.0.0.1:{dev_ports['gateway']}"
        async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
            demo = (await client.get(f"/api/live/streams/{live_id}")).json()
            assert demo["stream"]["status"] == "scheduled"
            assert [p["name"] for p in demo["products"]] == [
                "Merino scarf", "Wool coat", "Leather boots",
            ]  # fmt: skip
            assert demo["featured_product"]["name"] == "Wool coat"
            assert demo["featured_product"]["promo_code"] is None  # not before the live starts
            settings = await client.get(
                "/api/live/settings", headers={"Authorization": f"Bearer {admin_token}"}
            )
            assert settings.status_code == 200  # signed with the JWT_SECRET we gave
        viewer = await WsViewer.open(gateway, live_id)
        assert (await viewer.next_of("snapshot"))["data"]["stream"]["id"] == live_id
        await viewer.close()
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
            raise
    assert not any(port_open("127.0.0.1", port) for port in dev_ports.values())
