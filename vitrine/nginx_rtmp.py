"""nginx-rtmp on this machine, run from the deployed configuration (deploy/nginx-rtmp/).

`vitrine dev` and the tests start Debian's nginx with its RTMP module from the very nginx.conf and
record-done.sh docker-compose runs, pointed at local ports, folders and callback URL, so what is
tested is what is deployed. Nothing happens at import time.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vitrine.embedded import _children, _let_others_traverse
from vitrine.lifeline import ProcessGroup

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "nginx-rtmp"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
RECORD_DONE = "record-done.sh"
# What the deployed configuration names, and what replaces it here.
DEPLOYED_CALLBACKS = "http://streams:8001/webhooks"
DEPLOYED_SCRIPT = f"/etc/nginx/vitrine/{RECORD_DONE}"
SECRET_PLACEHOLDER = "__RTMP_CALLBACK_SECRET__"  # noqa: S105 (docker-compose puts the secret in)
DEPLOYED_ROOT = "/tmp"  # noqa: S108 (the container's folders, replaced by ours)
DEPLOYED_LOG = "/var/log/nginx/record-done.log"
LOGS = "logs"  # under the run directory: nginx's logs and record-done.sh's, never served
# What start.sh accepts: the secret goes into URLs and the configuration as it is.
SAFE_SECRET = re.compile(r"[A-Za-z0-9._~-]+")


def unavailable() -> str | None:
    """Why nginx-rtmp cannot run here, or None when it can."""
    if not shutil.which("nginx"):
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp ffmpeg)"
    if not RTMP_MODULE.exists():
        return f"the RTMP module is missing ({RTMP_MODULE}; apt-get install libnginx-mod-rtmp)"
    if not shutil.which("ffmpeg"):
        return "ffmpeg is not installed (it turns recordings into MP4 replays)"
    if not shutil.which("curl"):
        return "curl is not installed (record-done.sh posts on_record_done with it)"
    return None


def render_conf(
    *, callbacks_url: str, secret: str, rtmp_port: int, http_port: int, root: Path, host: str
) -> str:
    """deploy/nginx-rtmp/nginx.conf pointed at `callbacks_url` (…/webhooks), these ports and
    folders under `root`, as a foreground process writing its logs to `root`/logs. Refuses a
    secret start.sh would refuse: it goes into URLs and the configuration unescaped."""
    if not SAFE_SECRET.fullmatch(secret):
        raise ValueError(
            "the RTMP callback secret goes into URLs: use letters, digits and . _ ~ - only"
        )
    logs = root / LOGS
    conf = (DEPLOY_DIR / "nginx.conf").read_text(encoding="utf-8")
    for deployed, here in (
        (DEPLOYED_CALLBACKS, callbacks_url.rstrip("/")),
        (SECRET_PLACEHOLDER, secret),
        (DEPLOYED_SCRIPT, str(root / RECORD_DONE)),
        (DEPLOYED_LOG, str(logs / "record-done.log")),
        ("listen 1935;", f"listen {host}:{rtmp_port};"),
        ("rtmp://127.0.0.1:1935/show", f"rtmp://127.0.0.1:{rtmp_port}/show"),
        ("listen 8080;", f"listen {host}:{http_port};"),
        (f"{DEPLOYED_ROOT}/hls", f"{root}/hls"),
        (f"{DEPLOYED_ROOT}/recordings", f"{root}/recordings"),
        (f"root {DEPLOYED_ROOT};", f"root {root};"),
    ):
        if deployed not in conf:
            raise ValueError(f"deploy/nginx-rtmp/nginx.conf no longer has {deployed!r}")
        conf = conf.replace(deployed, here)
    preamble = (
        f"load_module {RTMP_MODULE};\n"
        "daemon off;\n"
        f"pid {root}/nginx.pid;\n"
        # Not info: nginx-rtmp logs every notify URL, the secret included, at that level.
        f"error_log {logs}/error.log notice;\n"
    )
    temp_paths = "".join(
        f"    {kind}_temp_path {root / 'tmp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", f"http {{\n    access_log {logs}/access.log;\n{temp_paths}", 1)
    return preamble + conf


@dataclass
class NginxRtmp:
    """One nginx-rtmp process; `start()` prepares `root` and waits until it answers."""

    root: Path
    callbacks_url: str  # where nginx's callbacks go, e.g. http://127.0.0.1:8000/webhooks
    secret: str  # the streams service's RTMP_CALLBACK_SECRET
    rtmp_port: int
    http_port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    group: ProcessGroup | None = field(default=None, repr=False)  # `vitrine dev`'s, if any

    @property
    def ingest_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def hls_base_url(self) -> str:
        return f"{self.http_url}/hls"

    @property
    def replay_base_url(self) -> str:
        return f"{self.http_url}/recordings"

    @property
    def control_url(self) -> str:
        """nginx-rtmp's control module (drop/publisher), for the streams service alone."""
        return f"{self.http_url}/control"

    def start(self, *, timeout_s: float = 10.0) -> None:
        self.root = self.root.absolute()
        self._prepare()
        conf = self.root / "nginx.conf"
        rendered = render_conf(
            callbacks_url=self.callbacks_url,
            secret=self.secret,
            rtmp_port=self.rtmp_port,
            http_port=self.http_port,
            root=self.root,
            host=self.host,
        )
        _write_private(conf, rendered)
        with (self.root / LOGS / "stderr.log").open("ab") as stderr:
            self.process = subprocess.Popen(
                ["nginx", "-p", str(self.root), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Ctrl-C in a terminal reaches us, not nginx directly; it dies with `vitrine dev`.
                **_children(self.group, death_signal=signal.SIGTERM),
            )
            if self.group is not None:
                self.group.joined(self.process.pid)
        try:
            self._wait_ready(timeout_s)
        except RuntimeError:
            self.stop()
            raise

    def _prepare(self) -> None:
        """As root, nginx's workers (and record-done.sh) run as nobody: what they write must be
        theirs to write, and the way to it open to them."""
        for folder in ("hls", "recordings", "tmp", LOGS):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / folder).chmod(0o777)
        self.root.chmod(0o755)
        # Earlier versions logged record-done.sh's command line, the secret included, there.
        (self.root / "recordings" / "record-done.log").unlink(missing_ok=True)
        script = self.root / RECORD_DONE
        shutil.copyfile(DEPLOY_DIR / RECORD_DONE, script)
        script.chmod(0o755)
        if os.geteuid() == 0:
            _let_others_traverse(self.root)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.logs()}")
            with contextlib.suppress(OSError, httpx.TransportError):
                socket.create_connection(("127.0.0.1", self.rtmp_port), 0.5).close()
                httpx.get(self.http_url, timeout=0.5)
                return
            time.sleep(0.1)
        raise RuntimeError(f"nginx-rtmp did not start in {timeout_s}s: {self.logs()}")

    def logs(self, tail: int = 4000) -> str:
        """The end of nginx's and record-done.sh's logs, for error messages."""
        parts = []
        for name in ("stderr.log", "error.log", "record-done.log"):
            path = self.root / LOGS / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner alone (it holds the callback secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)  # an earlier run's file keeps its mode otherwise
        file.write(text)
