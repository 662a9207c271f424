"""`vitrine dev`: everything on one machine, with embedded servers where none run."""

import asyncio
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from chassis.auth import issue_token
from chassis.settings import ServiceSettings
from services.streams.settings import StreamsSettings
from vitrine import nginx_rtmp
from vitrine.demo import load_demo
from vitrine.embedded import LOCAL_HOSTS, ensure_services, port_open
from vitrine.services import SERVICES, spec
from vitrine.system import System


def run_dev(*, state_dir: Path, demo: bool, gateway_port: int) -> None:
    urls, embedded = ensure_services(
        os.environ.get("DATABASE_URL"),
        os.environ.get("NATS_URL"),
        os.environ.get("REDIS_URL"),
        state_dir,
    )
    for server in embedded:
        print(f"started embedded {server.name} on port {server.port}")
    os.environ.update(urls)
    system = System(
        env=urls,
        ports={
            "streams": int(os.environ.get("STREAMS_PORT", 8001)),
            "products": int(os.environ.get("PRODUCTS_PORT", 8002)),
            "chat": int(os.environ.get("CHAT_PORT", 8003)),
            "analytics": int(os.environ.get("ANALYTICS_PORT", 8004)),
            "gateway": gateway_port,
        },
        log_dir=state_dir.absolute() / "logs",
    )
    video: nginx_rtmp.NginxRtmp | None = None
    try:
        asyncio.run(_migrate())
        system.start()
        video = _start_nginx_rtmp(state_dir, streams_url=system.url("streams"))
        gateway = system.url("gateway")
        admin = issue_token(
            secret=ServiceSettings().jwt_secret.get_secret_value(),
            user_id="dev-admin",
            name="Admin",
            role="admin",
        )
        if demo:
            live = asyncio.run(load_demo(gateway, admin_token=admin))
            print(f"demo live: {gateway}/api/live/streams/{live['id']}")
            print(f"           websocket ws://127.0.0.1:{gateway_port}/ws/live/{live['id']}")
        print(f"viewer:    {gateway}/live    admin console: {gateway}/admin")
        print(f"gateway:   {gateway}  (API docs {gateway}/docs)")
        print(f"logs:      {system.log_dir}")
        print(f"admin token (12 h):\n{admin}")
        print("Ctrl-C stops everything.")
        _wait_for_interrupt(system)
    finally:
        if video is not None:
            video.stop()
        system.stop()
        for server in reversed(embedded):
            server.stop()


def _start_nginx_rtmp(state_dir: Path, *, streams_url: str) -> nginx_rtmp.NginxRtmp | None:
    """nginx-rtmp from deploy/nginx-rtmp/ where the streams service expects it (RTMP_INGEST_URL,
    HLS_BASE_URL), unless it cannot run here or something already listens there."""
    settings = StreamsSettings()
    ingest, hls = urlsplit(settings.rtmp_ingest_url), urlsplit(settings.hls_base_url)
    if ingest.hostname not in LOCAL_HOSTS or hls.hostname not in LOCAL_HOSTS:
        return None  # the video server is elsewhere
    rtmp_port, http_port = ingest.port or 1935, hls.port or 80
    if port_open("127.0.0.1", rtmp_port) or port_open("127.0.0.1", http_port):
        print(f"nginx-rtmp: ports {rtmp_port}/{http_port} taken, using what listens there")
        return None
    if (reason := nginx_rtmp.unavailable()) is not None:
        print(f"nginx-rtmp not started: {reason}")
        return None
    server = nginx_rtmp.NginxRtmp(
        root=state_dir.absolute() / "nginx-rtmp",
        callbacks_url=f"{streams_url}/webhooks",
        secret=settings.rtmp_callback_secret.get_secret_value(),
        rtmp_port=rtmp_port,
        http_port=http_port,
    )
    try:
        server.start()
    except (RuntimeError, ValueError) as error:  # ValueError: a secret unfit for a URL
        print(f"nginx-rtmp not started: {error}")
        return None
    print(f"started nginx-rtmp: OBS publishes to {server.ingest_url}, replays as MP4")
    return server


async def _migrate() -> None:
    for name in SERVICES:
        chosen = spec(name)
        if chosen.migrate is not None:
            await chosen.migrate(chosen.settings())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_for_interrupt(system: System) -> None:
    # Set for both: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            for name, process in system.processes.items():
                if process.poll() is not None:
                    print(f"{name} stopped (exit {process.returncode}); see its log")
                    return
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping")
