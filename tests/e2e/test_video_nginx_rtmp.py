"""nginx-rtmp for real: nginx + libnginx-mod-rtmp configured from deploy/nginx-rtmp/nginx.conf,
calling the system through the gateway, and ffmpeg publishing a test pattern like OBS would."""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.conftest import auth, eventually
from tests.support.viewer import WsViewer
from vitrine.system import System, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED_CONF = ROOT / "deploy" / "nginx-rtmp" / "nginx.conf"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
GRACE_S = 2
FFMPEG_TEST_PATTERN = (
    "ffmpeg -hide_banner -loglevel error -re"
    " -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine"
    " -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -c:a aac -f flv"
)

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") and shutil.which("ffmpeg") and RTMP_MODULE.exists()),
    reason="needs nginx, libnginx-mod-rtmp and ffmpeg (apt-get install nginx libnginx-mod-rtmp "
    "ffmpeg)",
)


@dataclass
class Nginx:
    rtmp_port: int
    http_port: int
    root: Path

    @property
    def ingest_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def nginx_conf(*, gateway_url: str, rtmp_port: int, http_port: int, root: Path) -> str:
    """The deployed configuration, pointed at this test's gateway, ports and folders."""
    conf = DEPLOYED_CONF.read_text()
    for deployed, here in (
        ("http://streams:8001/webhooks", f"{gateway_url}/webhooks"),
        ("__RTMP_CALLBACK_SECRET__", INSECURE_RTMP_CALLBACK_SECRET),
        ("listen 1935;", f"listen 127.0.0.1:{rtmp_port};"),
        ("rtmp://127.0.0.1:1935/show", f"rtmp://127.0.0.1:{rtmp_port}/show"),
        ("listen 8080;", f"listen 127.0.0.1:{http_port};"),
        ("/tmp/hls", f"{root}/hls"),
        ("/tmp/recordings", f"{root}/recordings"),
        ("root /tmp;", f"root {root};"),
        ("worker_processes auto;", "worker_processes 1;"),
    ):
        assert deployed in conf, deployed
        conf = conf.replace(deployed, here)
    preamble = (
        f"load_module {RTMP_MODULE};\n"
        "daemon off;\n"
        f"pid {root}/nginx.pid;\n"
        f"error_log {root}/error.log info;\n"
    )
    temp_paths = "".join(
        f"    {kind}_temp_path {root}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", f"http {{\n    access_log {root}/access.log;\n{temp_paths}", 1)
    return preamble + conf


@pytest.fixture(scope="module")
def nginx(system: System) -> Iterator[Nginx]:
    # As root, nginx's workers run as nobody: the folders they write must be theirs to write.
    root = Path(tempfile.mkdtemp(prefix="vitrine-nginx-"))
    root.chmod(0o755)
    for folder in ("hls", "recordings", "tmp"):
        (root / folder).mkdir()
        (root / folder).chmod(0o777)
    server = Nginx(rtmp_port=free_port(), http_port=free_port(), root=root)
    conf = root / "nginx.conf"
    conf.write_text(
        nginx_conf(
            gateway_url=system.url("gateway"),
            rtmp_port=server.rtmp_port,
            http_port=server.http_port,
            root=root,
        )
    )
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "stderr.log").open("wb"),
    )
    try:
        _wait_listening(server.http_port, process, root)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen, root: Path) -> None:
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError("nginx exited: " + (root / "stderr.log").read_text())
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return
        time.sleep(0.1)
    raise RuntimeError("nginx did not start")


class Encoder:
    """ffmpeg publishing a test pattern with a sine tone, in real time, like OBS."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [*FFMPEG_TEST_PATTERN.split(), url],
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
    encoder = Encoder(url)
    try:
        yield encoder
    finally:
        await encoder.stop()


@pytest.fixture(scope="module")
async def on_test_nginx(system: System, nginx: Nginx, tokens: dict) -> AsyncIterator[None]:
    """New lives are created on the test nginx, with a short reconnect grace."""
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as gateway:
        admin = auth(tokens["admin"])
        answer = await gateway.put(
            "/api/live/settings",
            json={
                "platform": "nginx_rtmp",
                "config": {
                    "ingest_url": nginx.ingest_url,
                    "hls_base_url": f"{nginx.http_url}/hls",
                    "replay_base_url": f"{nginx.http_url}/recordings",
                    "reconnect_grace_s": GRACE_S,
                },
            },
            headers=admin,
        )
        assert answer.status_code == 200, answer.text
        yield
        await gateway.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)


async def create_live(gateway: httpx.AsyncClient, tokens: dict) -> dict:
    created = await gateway.post(
        "/api/live/streams", json={"title": "Unboxing live"}, headers=auth(tokens["admin"])
    )
    assert created.status_code == 201, created.text
    return created.json()


async def admin_view(gateway: httpx.AsyncClient, tokens: dict, stream_id: str) -> dict:
    answer = await gateway.get(f"/api/live/streams/{stream_id}", headers=auth(tokens["admin"]))
    assert answer.status_code == 200, answer.text
    return answer.json()["stream"]


async def playlist(url: str) -> str | None:
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(url)
    return answer.text if answer.status_code == 200 and "#EXTINF" in answer.text else None


async def test_publishing_with_the_key_goes_live_serves_hls_and_ends_into_a_replay(
    gateway, system, nginx, on_test_nginx, tokens
):
    live = await create_live(gateway, tokens)
    key, playback_id = live["stream_key"], live["playback_id"]
    assert live["obs"] == {"server": nginx.ingest_url, "stream_key": key}
    assert live["playback_url"] == f"{nginx.http_url}/hls/{playback_id}.m3u8"
    viewer = await WsViewer.open(system.url("gateway"), live["id"])
    assert (await viewer.next())["type"] == "snapshot"

    async with publishing(f"{live['obs']['server']}/{key}") as encoder:
        started = await viewer.next_of("stream.started", timeout=15)
        assert started["data"]["stream"]["status"] == "live"
        assert (await admin_view(gateway, tokens, live["id"]))["provider_state"] == "connected"

        # Viewers play the HLS playlist at the live's playback URL; it never names the key.
        await asyncio.sleep(6)
        print(sorted(nginx.root.rglob("*")), (nginx.root / "error.log").read_text()[-4000:])
        text = await eventually(lambda: playlist(live["playback_url"]), timeout=20, interval=0.5)
        assert key not in text
        segment = next(line for line in text.splitlines() if line.endswith(".ts"))
        assert segment.startswith(playback_id)
        async with httpx.AsyncClient(timeout=5) as client:
            media = await client.get(f"{nginx.http_url}/hls/{segment}")
        assert media.status_code == 200 and media.content[:1] == b"\x47"  # MPEG-TS sync byte
        assert not [p for p in nginx.root.rglob("*") if key in p.name]
        assert encoder.process.poll() is None

    # The encoder left: a provider state at once, the end only after the reconnect grace.
    left = await admin_view(gateway, tokens, live["id"])
    disconnected = await eventually(
        lambda: _with_state(gateway, tokens, live["id"], "disconnected"), timeout=5
    )
    assert disconnected["status"] == "live" and disconnected["end_deadline"] is not None
    # nginx reports the recording and the publish's end in either order.
    assert disconnected["last_webhook"]["type"] in ("on_publish_done", "on_record_done")
    ended = await viewer.next_of("stream.ended", timeout=GRACE_S + 10)
    assert ended["data"]["stream"]["status"] == "ended"
    assert left["status"] == "live"

    # The recording becomes the replay, served over HTTP, named by the playback id.
    stream = await eventually(lambda: _with_replay(gateway, tokens, live["id"]), timeout=10)
    assert stream["replay_url"] == f"{nginx.http_url}/recordings/{playback_id}.flv"
    async with httpx.AsyncClient(timeout=5) as client:
        replay = await client.get(stream["replay_url"])
    assert replay.status_code == 200
    assert replay.content[:3] == b"FLV" and len(replay.content) > 10_000
    await viewer.close()


async def test_a_wrong_key_is_refused_and_the_encoder_fails(
    gateway, system, nginx, on_test_nginx, tokens
):
    live = await create_live(gateway, tokens)
    async with publishing(f"{nginx.ingest_url}/live_not-a-key") as encoder:
        assert await encoder.exited(20) != 0
    after = await admin_view(gateway, tokens, live["id"])
    assert after["status"] == "scheduled" and after["provider_state"] is None
    assert not list((nginx.root / "hls").glob("live_not-a-key*"))


async def _with_state(gateway, tokens, stream_id: str, state: str) -> dict | None:
    stream = await admin_view(gateway, tokens, stream_id)
    return stream if stream["provider_state"] == state else None


async def _with_replay(gateway, tokens, stream_id: str) -> dict | None:
    stream = await admin_view(gateway, tokens, stream_id)
    return stream if stream["replay_url"] else None


def test_the_deployed_configuration_is_valid_for_nginx(tmp_path) -> None:
    os.makedirs(tmp_path / "tmp", exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_conf(gateway_url="http://127.0.0.1:9", rtmp_port=1, http_port=2, root=tmp_path)
    )
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
