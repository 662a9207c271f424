"""The viewers' processes, driven from the benchmark over a pipe (open, start, count, stop, close).

The viewers live outside the benchmark's process (which publishes, over HTTP) so that each side
has its own event loop and, where the machine allows, its own core.
"""

import asyncio
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from bench.client import Audience, raise_open_files_limit


def _serve(conn: Connection) -> None:
    """A viewers' process: obeys open / start / stop / close sent by the benchmark."""
    import uvloop

    raise_open_files_limit()

    async def main() -> None:
        audience = Audience()
        while True:
            command, args = await asyncio.to_thread(conn.recv)
            if command == "open":
                conn.send(await audience.open(**args))
            elif command == "start":
                audience.start(**args)
                conn.send(None)
            elif command == "count":
                conn.send(audience.stats.frames)
            elif command == "watched":
                conn.send(audience.stats.watched)
            elif command == "stop":
                conn.send(audience.stop())
            elif command == "close":
                audience.close()
                await asyncio.sleep(0.2)  # let the aborts reach the server
                conn.send(None)
                return

    uvloop.run(main())


class Fleet:
    """`processes` viewers' processes sharing `count` viewers of one websocket URL."""

    def __init__(self, processes: int = 1) -> None:
        context = multiprocessing.get_context("spawn")
        self.links: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_serve, args=(theirs,), daemon=True)
            proc.start()
            self.links.append(ours)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    async def _all(self, command: str, per_process: list[dict] | None = None) -> list[Any]:
        for index, link in enumerate(self.links):
            link.send((command, per_process[index] if per_process else {}))
        return list(await asyncio.gather(*(asyncio.to_thread(link.recv) for link in self.links)))

    async def open(
        self, *, host: str, port: int, path: str, count: int, samples: int
    ) -> dict[str, Any]:
        k = len(self.links)
        shares = [count // k + (1 if i < count % k else 0) for i in range(k)]
        replies = await self._all(
            "open",
            [
                {"host": host, "port": port, "path": path, "count": share, "samples": samples // k}
                for share in shares
            ],
        )
        errors: dict[str, int] = {}
        for reply in replies:
            for text, times in reply["errors"].items():
                errors[text] = errors.get(text, 0) + times
        return {
            "opened": sum(r["opened"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": errors,
            "seconds": max(r["seconds"] for r in replies),
        }

    async def start(self, **options: Any) -> None:
        """Measure from now on; `options` as `Audience.start` takes them."""
        await self._all("start", [options] * len(self.links))

    async def count(self) -> int:
        """Event frames so far, measuring on."""
        return sum(await self._all("count"))

    async def watched(self) -> int:
        """Frames of the watched type so far, every socket."""
        return sum(await self._all("watched"))

    async def stop(self) -> dict[str, Any]:
        replies = await self._all("stop")
        types: dict[str, int] = {}
        codes: dict[int, int] = {}
        arrivals: dict[int, list[float]] = {}
        keys: dict[int, str] = {}
        for reply in replies:
            for seq, times in reply["arrivals"].items():
                arrivals.setdefault(seq, []).extend(times)
            keys.update(reply["keys"])
            for name, times in reply["types"].items():
                types[name] = types.get(name, 0) + times
            for code, times in reply["close_codes"].items():
                codes[code] = codes.get(code, 0) + times
        return {
            "frames": sum(r["frames"] for r in replies),
            "latencies_ms": [x for r in replies for x in r["latencies_ms"]],
            "types": types,
            "dropped": sum(r["dropped"] for r in replies),
            "close_codes": codes,
            "cpu_s": sum(r["cpu_s"] for r in replies),
            "watched": sum(r["watched"] for r in replies),
            "arrivals": arrivals,
            "keys": keys,
        }

    async def close(self) -> None:
        await self._all("close")
        for proc in self.procs:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()
