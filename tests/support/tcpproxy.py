"""A TCP proxy we can cut and restore, to take a server away from a service under test."""

import asyncio
import contextlib
import threading

from vitrine.system import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target, on its own thread and event loop."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._replies_flow = threading.Event()  # cleared: the server's answers are held back
        self._replies_flow.set()
        self._thread.start()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> None:
        """Accept connections (again)."""
        self._call(self._start())

    def cut(self) -> None:
        """Refuse new connections and drop the open ones, as if the server went away."""
        self._call(self._cut())

    def hold_replies(self) -> None:
        """Let requests through but hold the server's answers (an ack lost on the way back)."""
        self._replies_flow.clear()

    def release_replies(self) -> None:
        self._replies_flow.set()

    def close(self) -> None:
        self.cut()
        self._call(self._settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _settle(self) -> None:
        """Let the connections' tasks end before the loop stops under them."""
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, replies: bool = False
        ) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    while replies and not self._replies_flow.is_set():
                        await asyncio.sleep(0.01)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer, replies=True))
        self._writers -= {writer, up_writer}
