"""A websocket viewer for tests: connects to the gateway and reads JSON frames."""

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class WsViewer:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, gateway_http_url: str, stream_id: str, **query: object) -> "WsViewer":
        url = gateway_http_url.replace("http://", "ws://") + f"/ws/live/{stream_id}"
        params = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
        connection = await connect(url + (f"?{params}" if params else ""), max_size=2**22)
        return cls(connection)

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.seen.append(frame)
        return frame

    async def next_of(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame of one of `types`, skipping others (e.g. viewers.updated)."""
        while True:
            frame = await self.next(timeout)
            if frame["type"] in types:
                return frame

    async def silent_for(self, seconds: float, *, ignoring: tuple[str, ...] = ()) -> bool:
        """Whether nothing but `ignoring` arrives for `seconds`."""
        try:
            while True:
                frame = await self.next(seconds)
                if frame["type"] not in ignoring:
                    return False
        except TimeoutError:
            return True

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def close(self) -> None:
        await self.connection.close()
