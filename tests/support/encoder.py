"""ffmpeg as the encoder: a test pattern and a tone published over RTMP in real time, like OBS."""

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator

TEST_PATTERN = (
    "ffmpeg -hide_banner -loglevel error -re"
    " -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine"
    " -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 25 -c:a aac -f flv"
)


class Encoder:
    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [*TEST_PATTERN.split(), url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def exited(self, timeout: float) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # ffmpeg closes the stream properly
            try:
                await self.exited(10)
            except TimeoutError:
                self.process.kill()
                await self.exited(5)


@contextlib.asynccontextmanager
async def publishing(url: str) -> AsyncIterator[Encoder]:
    """An encoder publishing to `url` (ingest URL/stream key) until the block ends."""
    encoder = Encoder(url)
    try:
        yield encoder
    finally:
        await encoder.stop()
