"""The audience through two gateways: a thousand viewers come and go, one gateway is killed, and
the count everyone sees converges to the truth within the presence expiry; players without a
socket count too, each person once; admins read it all in the live's analytics."""

import asyncio
import contextlib
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import auth, eventually
from vitrine.system import System, free_port

DOOMED_TTL_S = 3  # PRESENCE_TTL_S of the gateway that will be killed


async def on_air(gateway, tokens, title: str) -> str:
    admin = auth(tokens["admin"])
    created = await gateway.post("/api/live/streams", json={"title": title}, headers=admin)
    assert created.status_code == 201, created.text
    live_id = created.json()["id"]
    started = await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
    assert started.status_code == 200, started.text
    return live_id


async def watch(url: str, live_id: str, session_id: str) -> ClientConnection:
    """A light viewer: connects, waits for the snapshot, then just stays."""
    ws_url = url.replace("http://", "ws://") + f"/ws/live/{live_id}?session_id={session_id}"
    connection = await connect(ws_url, max_size=2**22, open_timeout=30)
    await asyncio.wait_for(connection.recv(), 30)
    return connection


async def crowd(url: str, live_id: str, names: list[str]) -> list[ClientConnection]:
    limit = asyncio.Semaphore(100)

    async def one(name: str) -> ClientConnection:
        async with limit:
            return await watch(url, live_id, name)

    return list(await asyncio.gather(*(one(name) for name in names)))


async def leave(connections: list[ClientConnection]) -> None:
    async def one(connection: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await connection.close()

    await asyncio.gather(*(one(c) for c in connections))


async def current(gateway, live_id: str) -> int:
    answer = await gateway.get(f"/api/live/streams/{live_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["viewers"]["current"]


async def test_a_thousand_viewers_on_two_gateways_and_one_killed_converge_to_the_truth(
    gateway, tokens, system, tmp_path: Path
):
    live_id = await on_air(gateway, tokens, "Crowd")
    doomed = System(
        env=system.env,
        ports={**system.ports, "gateway": free_port()},
        log_dir=tmp_path,
        per_service={"gateway": {"GATEWAY_ID": "gw-doomed", "PRESENCE_TTL_S": str(DOOMED_TTL_S)}},
    )
    await asyncio.to_thread(doomed.start, "gateway")
    first, second = system.url("gateway"), doomed.url("gateway")
    kept: list[ClientConnection] = []
    try:
        # 600 join each gateway; a third of them leave and others take their place, in waves.
        on_first = await crowd(first, live_id, [f"first-{i:05d}" for i in range(500)])
        on_second = await crowd(second, live_id, [f"second-{i:05d}" for i in range(500)])
        for wave in range(2):
            await leave(on_first[:100] + on_second[:100])
            on_first = on_first[100:] + await crowd(
                first, live_id, [f"first-w{wave}-{i:04d}" for i in range(50)]
            )
            on_second = on_second[100:] + await crowd(
                second, live_id, [f"second-w{wave}-{i:04d}" for i in range(50)]
            )
        kept = on_first
        truth = len(on_first) + len(on_second)
        assert truth == 800

        async def everyone_counted() -> bool:
            return await current(gateway, live_id) == truth

        await eventually(everyone_counted, timeout=20, interval=0.2)

        killed_at = time.monotonic()
        await asyncio.to_thread(doomed.stop, "gateway", kill=True)
        await leave(on_second)

        async def only_the_survivors() -> bool:
            return await current(gateway, live_id) == len(on_first)

        await eventually(only_the_survivors, timeout=DOOMED_TTL_S + 10, interval=0.2)
        converged_in = time.monotonic() - killed_at
        # The expiry, an announcement interval, and the time to read it.
        assert converged_in < DOOMED_TTL_S + 4, converged_in

        admin = auth(tokens["admin"])

        async def all_views_recorded():
            answer = await gateway.get(f"/api/live/streams/{live_id}/analytics", headers=admin)
            assert answer.status_code == 200, answer.text
            viewers = answer.json()["viewers"]
            return viewers if viewers["total_views"] == 1200 else None

        # Analytics takes the 1,200 joins after whatever the run left it (a wait, not a figure).
        viewers = await eventually(all_views_recorded, timeout=90, interval=0.5)
        assert viewers["unique_viewers"] == 1200
        assert viewers["peak"] >= truth
        assert viewers["current"] == len(on_first)
    finally:
        await leave(kept)
        await asyncio.to_thread(doomed.stop)


async def test_a_player_and_a_socket_of_the_same_person_count_once(gateway, tokens, system):
    live_id = await on_air(gateway, tokens, "Players")
    user = auth(tokens["user"])
    socket = await watch(system.url("gateway"), live_id, "same-person-socket")
    try:
        body = {"stream_id": live_id, "session_id": "same-person-socket"}
        registered = await gateway.post("/api/live/viewers", json=body)
        assert registered.status_code == 201, registered.text
        other = {"stream_id": live_id, "session_id": "player-only-1"}
        assert (
            await gateway.post("/api/live/viewers", json=other, headers=user)
        ).status_code == 201

        async def two_people() -> bool:
            return await current(gateway, live_id) == 2

        await eventually(two_people, timeout=10, interval=0.2)
        assert (await gateway.put("/api/live/viewers", json=other)).status_code == 200

        async def one_person() -> bool:
            return await current(gateway, live_id) == 1

        await eventually(one_person, timeout=10, interval=0.2)
        for headers, expected in (({}, 401), (user, 403), (auth(tokens["admin"]), 200)):
            answer = await gateway.get(
                f"/api/live/streams/{live_id}/analytics.csv", headers=headers
            )
            assert answer.status_code == expected
    finally:
        await socket.close()
