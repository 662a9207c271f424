"""`make dev` on a machine where nothing listens: embedded servers, every service, the demo; and
however it ends (Ctrl-C, SIGTERM, a hang-up, `make` or itself killed), nothing it started stays.

Generous waits: on a busy two-core machine a start takes a minute or more.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import eventually, every_page
from tests.support.viewer import WsViewer
from vitrine.embedded import port_open
from vitrine.system import free_ports

ROOT = Path(__file__).resolve().parents[2]
STARTED = "Ctrl-C stops everything"
START_S = 300.0  # a start on a loaded machine, with room to spare
STOP_S = 60.0
PORTS = ("postgres", "nats", "redis", "streams", "products", "chat", "analytics", "notifications",
         "webhooks", "gateway", "rtmp", "hls", "smtp")  # fmt: skip
pytestmark = pytest.mark.timeout(900)


class Dev:
    """`vitrine dev` run as `make dev` runs it (or directly), its output read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        # A session of its own, as a terminal gives `make`: signals to its group reach no test.
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = START_S) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited ({self.process.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout:.0f} s:\n{self.output}")
            time.sleep(0.2)
        return self.output

    def vitrine_dev_pid(self) -> int:
        """`vitrine dev` itself: make's child, or the process started."""
        children = _children(self.process.pid)
        return children[0] if children else self.process.pid

    def ended(self, timeout: float = STOP_S) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _in_group(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(stat.parent.name))
    return found


def _eventually(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One for the module: PostgreSQL's initdb runs once."""
    return tmp_path_factory.mktemp("dev-state")


@pytest.fixture
def ports() -> dict[str, int]:
    return free_ports(PORTS)


def dev_env(ports: dict[str, int], **extra: str) -> dict[str, str]:
    hls = f"http://127.0.0.1:{ports['hls']}"
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{ports['postgres']}/vitrine",
        "NATS_URL": f"nats://127.0.0.1:{ports['nats']}",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "STREAMS_PORT": str(ports["streams"]),
        "PRODUCTS_PORT": str(ports["products"]),
        "CHAT_PORT": str(ports["chat"]),
        "ANALYTICS_PORT": str(ports["analytics"]),
        "NOTIFICATIONS_PORT": str(ports["notifications"]),
        "WEBHOOKS_PORT": str(ports["webhooks"]),
        "SMTP_URL": f"smtp://127.0.0.1:{ports['smtp']}",
        "GATEWAY_PORT": str(ports["gateway"]),
        "RTMP_INGEST_URL": f"rtmp://127.0.0.1:{ports['rtmp']}/live",
        "HLS_BASE_URL": f"{hls}/hls",
        "REPLAY_BASE_URL": f"{hls}/recordings",
        "RTMP_CONTROL_URL": f"{hls}/control",
        **extra,
    }


def vitrine_dev(state_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "vitrine.cli", "dev", "--state-dir", str(state_dir), *args]


def make_dev(state_dir: Path, *args: str) -> list[str]:
    return ["make", "--no-print-directory", "dev",
            f"DEV_ARGS=--state-dir {state_dir} {' '.join(args)}"]  # fmt: skip


def assert_nothing_left(ports: dict[str, int], group: int | None) -> None:
    taken = lambda: [n for n, p in ports.items() if port_open("127.0.0.1", p)]  # noqa: E731
    assert _eventually(lambda: not taken(), STOP_S), f"ports still taken: {taken()}"
    if group is not None:
        assert _eventually(lambda: not _in_group(group), STOP_S), _in_group(group)


def children_group(dev: Dev) -> int:
    """The process group `vitrine dev` starts its children in."""
    children = _children(dev.vitrine_dev_pid())
    assert children, dev.output
    return int(Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()[2])


async def test_dev_starts_embedded_servers_serves_the_demo_and_stops_everything(
    ports, state_dir
) -> None:
    secret = "a-jwt-secret-only-this-test-knows-0123456789"
    dev = Dev(vitrine_dev(state_dir), dev_env(ports, JWT_SECRET=secret))
    try:
        text = dev.wait_for(STARTED)
        for server in ("postgres", "nats", "valkey"):
            assert f"started embedded {server}" in text
        for service in ("streams", "products", "chat", "analytics", "notifications", "gateway"):
            assert re.search(rf"^  {service} +up in +[\d.]+ s ", text, re.MULTILINE), text
        assert f"e-mails:   caught in {state_dir.absolute() / 'mail'}" in text, text
        live_id = re.search(r"demo live: \S+/api/live/streams/([0-9a-f-]{36})", text).group(1)
        admin_token = text.split("admin token (12 h):\n", 1)[1].split("\n", 1)[0].strip()
        obs = re.search(r"OBS: +server (\S+) +stream key (\S+)", text)
        assert obs is not None, text
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        admin = {"Authorization": f"Bearer {admin_token}"}
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
            demo = (await client.get(f"/api/live/streams/{live_id}")).json()
            assert demo["stream"]["status"] == "scheduled"
            assert [p["name"] for p in demo["products"]] == [
                "Merino scarf", "Wool coat", "Leather boots",
            ]  # fmt: skip
            assert demo["featured_product"]["name"] == "Wool coat"
            assert demo["featured_product"]["promo_code"] is None  # not before the live starts
            for product in demo["products"]:  # pictures served by the gateway: works offline
                picture = await client.get(product["image_url"])
                assert product["image_url"].startswith(f"{gateway}/demo/")
                assert picture.status_code == 200
                assert picture.headers["content-type"].startswith("image/svg+xml")
            settings = await client.get("/api/live/settings", headers=admin)
            assert settings.status_code == 200  # signed with the JWT_SECRET we gave
            lives = await every_page(client, "/api/live/streams", headers=admin)
            [shown] = [live for live in lives if live["id"] == live_id]
            assert (obs.group(1), obs.group(2)) == (
                shown["obs"]["server"], shown["obs"]["stream_key"],
            )  # fmt: skip

            # The reminder's confirmation lands in the local SMTP catcher, as a file.
            async def reminded() -> bool:
                answer = await client.post(
                    f"/api/live/streams/{live_id}/reminders", json={"email": "new@example.com"}
                )
                return answer.status_code == 202  # anonymous: "check your inbox", whatever it knew

            await eventually(reminded, timeout=30)
            caught = lambda: list((state_dir / "mail").glob("*.eml"))  # noqa: E731
            await eventually(caught, timeout=30)
            assert b"To: new@example.com" in caught()[0].read_bytes()
        viewer = await WsViewer.open(gateway, live_id)
        assert (await viewer.next_of("snapshot"))["data"]["stream"]["id"] == live_id
        await viewer.close()
        group = children_group(dev)
    except BaseException:
        dev.kill()
        raise
    os.killpg(dev.process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    assert dev.ended() == 0, dev.output
    assert "stopped" in dev.output
    assert_nothing_left(ports, group)


def _sigterm(dev: Dev) -> None:
    os.kill(dev.process.pid, signal.SIGTERM)  # to make, which passes it on


def _hang_up(dev: Dev) -> None:
    os.killpg(dev.process.pid, signal.SIGHUP)  # the terminal closed: its whole group


def _kill_make(dev: Dev) -> None:
    os.kill(dev.process.pid, signal.SIGKILL)


def _kill_vitrine_dev(dev: Dev) -> None:
    os.kill(dev.vitrine_dev_pid(), signal.SIGKILL)


@pytest.mark.parametrize(
    "stop",
    [_sigterm, _hang_up, _kill_make, _kill_vitrine_dev],
    ids=["SIGTERM to make", "SIGHUP to the terminal's group", "make killed", "itself killed"],
)
def test_make_dev_leaves_nothing_running_however_it_ends(ports, state_dir, stop) -> None:
    dev = Dev(make_dev(state_dir, "--no-demo"), dev_env(ports))
    try:
        dev.wait_for(STARTED)
        assert dev.vitrine_dev_pid() != dev.process.pid  # make exec'd vitrine dev: its parent
        group = children_group(dev)
        stop(dev)
        assert_nothing_left(ports, group)
    finally:
        dev.kill()


@pytest.fixture
async def missing_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a database that does not exist yet on the PostgreSQL the tests use."""
    server = urlsplit(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"vitrine_dev_{secrets.token_hex(4)}"
    yield server._replace(path=f"/{name}").geturl()
    conn = await asyncpg.connect(server._replace(path="/postgres").geturl())
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def test_a_database_url_naming_a_missing_database_gets_it_created(
    ports, state_dir, missing_database
) -> None:
    dev = Dev(vitrine_dev(state_dir, "--no-demo"), dev_env(ports, DATABASE_URL=missing_database))
    try:
        text = dev.wait_for(STARTED)
        assert f"created database {missing_database}" in text
        assert "Traceback" not in text
    finally:
        os.killpg(dev.process.pid, signal.SIGINT)
        dev.ended()
        dev.kill()
    assert_nothing_left({k: v for k, v in ports.items() if k != "postgres"}, None)


def test_a_service_that_cannot_start_is_said_with_its_log_and_nothing_stays(
    ports, state_dir
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["gateway"]))
        squatter.listen()
        dev = Dev(vitrine_dev(state_dir, "--no-demo"), dev_env(ports))
        try:
            assert dev.ended(START_S) == 1, dev.output
        finally:
            dev.kill()
    text = dev.output
    assert re.search(r"gateway did not start: it exited with code \d+\.", text), text
    assert f"The last lines of its log, {state_dir}/logs/gateway.log:" in text
    assert "address already in use" in text
    assert "Traceback (most recent call last)" not in text.split("The last lines", 1)[0]
    assert_nothing_left(ports, None)


@pytest.mark.skipif(
    not Path("/usr/lib/python3/dist-packages").exists() or shutil.which("make") is None,
    reason="a Debian system Python (PEP 668) is where pip refuses to install",
)
def test_make_uv_installs_uv_in_a_virtual_environment_where_pip_may_not(tmp_path) -> None:
    system_python = "/usr/bin/python3"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no uv on this PATH
    done = subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "uv", f"PYTHON={system_python}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    uv = tmp_path / ".vitrine" / "uv" / "bin" / "uv"
    assert subprocess.run([str(uv), "--version"], capture_output=True).returncode == 0
    planned = subprocess.run(
        ["make", "-n", "-f", str(ROOT / "Makefile"), "install", f"PYTHON={system_python}"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ".vitrine/uv/bin/uv sync --frozen --all-extras" in planned.stdout
