"""Redis holds only viewer counts and chat limits: while a gateway's Redis is away, the live page
and its websockets keep working (counts last known, marked stale), and the viewers who joined
meanwhile are counted once it returns."""

import asyncio
import contextlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect

from tests.conftest import eventually
from tests.e2e.test_analytics_audience import current, on_air
from tests.support.tcpproxy import TcpProxy
from vitrine.system import System, free_port


async def test_a_gateway_without_redis_still_serves_the_live_and_counts_its_viewers_after(
    gateway, tokens, system, tmp_path: Path
):
    live_id = await on_air(gateway, tokens, "Redis away")
    address = urlsplit(system.env["REDIS_URL"])
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 6379)
    proxy.start()
    cut_off = System(
        env=system.env,
        ports={**system.ports, "gateway": free_port()},
        log_dir=tmp_path,
        per_service={
            "gateway": {
                "GATEWAY_ID": "gw-cut-off",
                "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            }
        },
    )
    await asyncio.to_thread(cut_off.start, "gateway")
    url = cut_off.url("gateway")
    ws_url = url.replace("http://", "ws://") + f"/ws/live/{live_id}"
    async with contextlib.AsyncExitStack() as viewers, httpx.AsyncClient(base_url=url) as http:
        try:
            before = await viewers.enter_async_context(connect(f"{ws_url}?session_id=before-0001"))
            snapshot = json.loads(await asyncio.wait_for(before.recv(), 30))
            assert snapshot["type"] == "snapshot"
            await eventually(lambda: current(gateway, live_id), timeout=20)  # counted: 1

            proxy.cut()
            page = await http.get(f"/api/live/streams/{live_id}")
            assert page.status_code == 200, page.text
            assert page.json()["viewers"]["stale"] is True
            during = await viewers.enter_async_context(connect(f"{ws_url}?session_id=during-001"))
            snapshot = json.loads(await asyncio.wait_for(during.recv(), 30))
            assert snapshot["type"] == "snapshot"
            assert snapshot["data"]["stream"]["id"] == live_id
            await during.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(during.recv(), 10)) == {"type": "pong"}

            proxy.start()

            async def both_counted() -> bool:
                return await current(gateway, live_id) == 2

            await eventually(both_counted, timeout=30, interval=0.3)
        finally:
            proxy.start()  # no-op when already accepting
            await asyncio.to_thread(cut_off.stop)
            proxy.close()
