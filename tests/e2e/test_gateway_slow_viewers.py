"""Viewers that cannot keep up, over real TCP: one that still reads (slowly) gets a real 1013
close frame right after whole frames, within moments; one that stopped reading is cut off (its
connection aborted) instead of being held on to with megabytes of frames."""

import asyncio
import base64
import contextlib
import os
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import orjson

from contracts import subject_for
from tests.e2e.test_analytics_audience import on_air
from tests.support.services import jetstream
from vitrine.system import System, free_port

FLOOD = 400  # events of ~8 KB: 3.2 MB, fifty times what a viewer may fall behind here
MAX_BEHIND = 64 * 1024


async def join(port: int, live_id: str, *, receive_buffer: int | None = None):
    """A raw websocket viewer: handshake, then its snapshot frame read; the stream pair back."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws/live/{live_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    opcode, payload = await read_frame(reader)
    assert opcode == 1 and orjson.loads(payload)["type"] == "snapshot"
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(length)


async def flood(env: dict, live: dict) -> None:
    """Events straight onto the live's subject, as fast as JetStream takes them: updates that
    change nothing (every service reading `stream.*` takes them as the valid events they are),
    numbered and padded with fields the model ignores."""
    async with jetstream(env) as js:
        for n in range(FLOOD):
            envelope = {
                "id": str(uuid4()), "type": "stream.updated", "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(), "stream_id": live["id"],
                "producer": "streams", "data": {"stream": live, "n": n, "padding": "x" * 8000},
            }  # fmt: skip
            await js.publish(
                subject_for(live["id"], "stream.updated", root=env["subject_root"]),
                orjson.dumps(envelope),
                stream=env["jetstream_stream"],
            )


async def test_a_slow_reader_gets_a_1013_close_frame_and_a_frozen_one_is_cut_off(
    gateway, tokens, system, env, tmp_path: Path
):
    live_id = await on_air(gateway, tokens, "Slow viewers")
    small = System(
        env=system.env,
        ports={**system.ports, "gateway": free_port()},
        log_dir=tmp_path,
        per_service={
            "gateway": {"WS_MAX_BUFFER_BYTES": str(MAX_BEHIND), "WS_SEND_BUFFER_BYTES": "16384"}
        },
    )
    await asyncio.to_thread(small.start, "gateway")
    writers = []
    try:
        port = small.ports["gateway"]
        slow_reader, slow_writer = await join(port, live_id)
        frozen_reader, frozen_writer = await join(port, live_id, receive_buffer=4096)
        writers += [slow_writer, frozen_writer]

        async def read_slowly() -> tuple[list[int], int | None]:
            """Whole frames, in order, until the close frame: (their n, close code)."""
            seen: list[int] = []
            while True:
                opcode, payload = await read_frame(slow_reader)
                if opcode == 8:
                    return seen, struct.unpack("!H", payload[:2])[0]
                frame = orjson.loads(payload)
                if "n" in frame["data"]:  # not the live's other events (its viewer counts)
                    seen.append(frame["data"]["n"])
                await asyncio.sleep(0.02)  # ~400 KB/s: slower than the flood

        reading = asyncio.create_task(read_slowly())
        live = (await gateway.get(f"/api/live/streams/{live_id}")).json()["stream"]
        await flood(env, live)
        seen, code = await asyncio.wait_for(reading, 15)
        assert code == 1013
        assert seen == list(range(len(seen))) and 0 < len(seen) < FLOOD

        # The frozen viewer never read a byte after its snapshot: its connection was aborted,
        # so what it finds now is the reset, not megabytes of frames.
        await asyncio.sleep(3)  # the close frame's grace
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := await asyncio.wait_for(frozen_reader.read(65536), 5):
                received += len(chunk)
        assert received < 256 * 1024, received
    finally:
        for writer in writers:
            writer.transport.abort()
        await asyncio.to_thread(small.stop)
