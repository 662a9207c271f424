"""A snapshot and the events after it agree: a viewer who joins while the chat service cannot reach
the bus gets a snapshot holding the messages posted meanwhile, and when the bus returns and their
events arrive, it is not shown them twice; a viewer who was there all along gets each once."""

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect

from services.gateway.hub import SNAPSHOT_MAX_AGE_S
from tests.conftest import auth, eventually
from tests.e2e.test_chat_flow import new_user
from tests.support.tcpproxy import TcpProxy
from vitrine.services import spec
from vitrine.system import System, free_port

PREFIX = "agree_"  # a chat service of its own (schema, durable consumers)


async def posted_texts(viewer: ClientConnection, *, until: str) -> list[str]:
    """The chat messages a viewer receives as events, up to the one saying `until`."""
    texts: list[str] = []
    while True:
        frame = json.loads(await asyncio.wait_for(viewer.recv(), 30))
        if frame["type"] == "chat.posted":
            texts.append(frame["data"]["message"]["message"])
            if texts[-1] == until:
                return texts


async def test_a_viewer_joining_while_the_bus_is_away_sees_each_message_once(
    gateway, tokens, system, env, tmp_path: Path
):
    address = urlsplit(env["nats_url"])
    bus = TcpProxy(address.hostname or "127.0.0.1", address.port or 4222)
    bus.start()
    chat = spec("chat")
    await chat.migrate(chat.settings(**env, db_schema_prefix=PREFIX))  # type: ignore[call-arg,misc]
    ports = {**system.ports, "chat": free_port(), "gateway": free_port()}
    ours = System(
        env=system.env,
        ports=ports,
        log_dir=tmp_path,
        per_service={
            "chat": {"NATS_URL": f"nats://127.0.0.1:{bus.port}", "DB_SCHEMA_PREFIX": PREFIX},
            "gateway": {"GATEWAY_ID": "gw-agree"},
        },
    )
    await asyncio.to_thread(ours.start, "chat", "gateway")
    zoe = new_user("Zoé")
    try:
        async with httpx.AsyncClient(base_url=ours.url("gateway"), timeout=15) as ours_http:
            created = await gateway.post(
                "/api/live/streams", json={"title": "Agree"}, headers=auth(tokens["admin"])
            )
            live_id = created.json()["id"]

            async def post(text: str) -> int:
                answer = await ours_http.post(
                    "/api/live/chat", json={"stream_id": live_id, "message": text},
                    headers=auth(zoe),
                )  # fmt: skip
                return answer.status_code

            async def accepted(text: str) -> bool:
                return await post(text) == 201

            await eventually(lambda: accepted("hello"), timeout=30)
            ws_url = ours.url("gateway").replace("http://", "ws://") + f"/ws/live/{live_id}"
            async with connect(ws_url) as there_all_along:
                first = json.loads(await asyncio.wait_for(there_all_along.recv(), 30))
                assert [m["message"] for m in first["data"]["recent_messages"]] == ["hello"]

                bus.cut()  # the chat service keeps taking messages; their events wait
                for n in range(3):
                    assert await post(f"during {n}") == 201
                await asyncio.sleep(SNAPSHOT_MAX_AGE_S)  # the hub's snapshot is built anew
                async with connect(ws_url) as joined_during:
                    snapshot = json.loads(await asyncio.wait_for(joined_during.recv(), 30))
                    shown = [m["message"] for m in snapshot["data"]["recent_messages"]]
                    assert shown == ["hello", "during 0", "during 1", "during 2"]

                    bus.start()
                    assert await accepted("after")
                    assert await posted_texts(joined_during, until="after") == ["after"]
                assert await posted_texts(there_all_along, until="after") == [
                    "during 0", "during 1", "during 2", "after",
                ]  # fmt: skip
    finally:
        await asyncio.to_thread(ours.stop)
        bus.close()
