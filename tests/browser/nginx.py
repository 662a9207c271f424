"""A throwaway nginx-rtmp for the browser tests: RTMP in, HLS out, callbacks to the gateway."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

CONFIG = """
load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        # The HLS module names its files before on_publish's redirect renames the stream, so
        # the renamed stream (the playback id) is pushed to a second application that packs HLS.
        application live {{
            live on;
            record off;
            on_publish {callbacks}/on_publish?secret={secret};
            on_publish_done {callbacks}/on_publish_done?secret={secret};
            notify_method post;
            push rtmp://127.0.0.1:{rtmp_port}/hls;
        }}
        application hls {{
            live on;
            record off;
            allow publish 127.0.0.1;
            deny publish all;
            hls on;
            hls_path {root}/hls;
            hls_fragment 1;
            hls_playlist_length 10;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /hls {{
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            root {root};
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin *;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> str | None:
    """Why nginx-rtmp cannot run here, or None when it can."""
    if not shutil.which("nginx"):
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)"
    if not RTMP_MODULE.exists():
        return f"the RTMP module is missing ({RTMP_MODULE}; apt-get install libnginx-mod-rtmp)"
    if not shutil.which("ffmpeg"):
        return "ffmpeg is not installed"
    return None


@dataclass
class NginxRtmp:
    root: Path
    callbacks: str  # e.g. http://127.0.0.1:8000/webhooks/nginx-rtmp
    secret: str
    rtmp_port: int = 0
    http_port: int = 0
    process: subprocess.Popen | None = None

    @property
    def ingest_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def hls_base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hls"

    def start(self) -> None:
        self.rtmp_port, self.http_port = free_port(), free_port()
        (self.root / "hls").mkdir(parents=True, exist_ok=True)
        conf = self.root / "nginx.conf"
        conf.write_text(CONFIG.format(module=RTMP_MODULE, root=self.root, **self._ports()))
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.root), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.rtmp_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx-rtmp did not start: {(self.root / 'error.log').read_text()}")

    def _ports(self) -> dict:
        return {
            "rtmp_port": self.rtmp_port,
            "http_port": self.http_port,
            "callbacks": self.callbacks,
            "secret": self.secret,
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
