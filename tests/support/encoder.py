"""ffmpeg as the encoder: a test pattern and a tone published over RTMP in real time, like OBS.

A captioned encoder shows, instead of the pattern, a white bar as wide as the text of a file it
rereads at every frame: a test writes what is "on screen" there and later finds it in the
recording (`bar_widths`). A slow one (`speed` < 1) makes less than a second of video each second,
as an encoder short of CPU does.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

TEST_PATTERN = (
    "ffmpeg -hide_banner -loglevel error -re"
    " -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine"
    " -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 25 -c:a aac -f flv"
)
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
WIDTH, HEIGHT, BAR_Y = 320, 240, 100  # the bar's middle row


class Encoder:
    def __init__(self, url: str, *, speed: float = 1.0, caption: Path | None = None) -> None:
        command = TEST_PATTERN.split()
        if caption is not None:
            # Black, with a white box around the caption (fontcolor white too): a plain bar.
            source = (
                f"color=c=black:size={WIDTH}x{HEIGHT}:rate=25,drawtext=fontfile={FONT}"
                f":textfile={caption}:reload=1:fontsize=40:fontcolor=white:box=1"
                ":boxcolor=white:x=0:y=80"
            )
            command[command.index("testsrc=size=320x240:rate=25")] = source
        if speed != 1.0:
            command[command.index("-re")] = f"-readrate {speed}"
            command = " ".join(command).split()
        self.process = subprocess.Popen(
            [*command, url],
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
async def publishing(
    url: str, *, speed: float = 1.0, caption: Path | None = None
) -> AsyncIterator[Encoder]:
    """An encoder publishing to `url` (ingest URL/stream key) until the block ends."""
    encoder = Encoder(url, speed=speed, caption=caption)
    try:
        yield encoder
    finally:
        await encoder.stop()


def show(caption: Path, text: str) -> None:
    """Put `text` on a captioned encoder's screen from its next frame (never half-written)."""
    part = caption.with_name(caption.name + ".part")
    part.write_text(text)
    os.replace(part, caption)


async def bar_widths(video: Path, *, fps: int = 10) -> list[tuple[float, int]]:
    """(seconds into `video`, width in pixels of the white bar then), `fps` times a second."""
    decoded = await asyncio.to_thread(
        subprocess.run,
        ["ffmpeg", "-v", "error", "-i", str(video), "-vf", f"fps={fps},format=gray",
         "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    frame = WIDTH * HEIGHT
    widths = []
    for index in range(len(decoded.stdout) // frame):
        row = decoded.stdout[index * frame + BAR_Y * WIDTH : index * frame + (BAR_Y + 1) * WIDTH]
        widths.append((round(index / fps, 3), sum(1 for pixel in row if pixel > 128)))
    return widths
