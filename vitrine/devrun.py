"""`vitrine dev`: everything on one machine, with embedded servers where none run.

Nothing it starts outlives it (vitrine/lifeline.py): Ctrl-C, SIGTERM and SIGHUP stop everything
in order, and the death of its parent (`make dev` killed) or its own SIGKILL take the rest down.
"""

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from chassis.auth import issue_token
from chassis.settings import ServiceSettings
from services.streams.settings import StreamsSettings
from vitrine import nginx_rtmp
from vitrine.database import ensure_database, printable_url
from vitrine.demo import load_demo
from vitrine.embedded import LOCAL_HOSTS, EmbeddedServer, ensure_services, port_open
from vitrine.lifeline import ProcessGroup, die_with_parent
from vitrine.services import SERVICES, spec
from vitrine.system import System

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(Exception):
    """A stop signal arrived: everything stops in order."""


def say(line: str = "") -> None:
    """Print, even once the terminal is gone (a hang-up must not stop the stopping)."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


@dataclass
class Running:
    """What this `vitrine dev` started, stopped in the reverse order."""

    group: ProcessGroup = field(default_factory=ProcessGroup)
    embedded: list[EmbeddedServer] = field(default_factory=list)
    system: System | None = None
    video: nginx_rtmp.NginxRtmp | None = None
    mail: Any = None  # vitrine.mailcatcher.MailCatcher (aiosmtpd is a development package)

    def stop(self) -> None:
        if self.video is not None:
            self.video.stop()
        if self.mail is not None:
            self.mail.stop()
        if self.system is not None:
            self.system.stop()
        for server in reversed(self.embedded):
            server.stop()
        self.group.kill_all()  # what the above left behind (workers, helpers)


def run_dev(
    *, state_dir: Path, demo: bool, gateway_port: int, start_timeout_s: float, stall_s: float
) -> int:
    """Run everything until a stop signal; the exit status (1: something did not start)."""
    die_with_parent(signal.SIGTERM)  # `make dev` killed: stop as for a SIGTERM
    _on_stop_signals(_raise_stop)
    running = Running()
    status = 0
    try:
        _start(running, state_dir=state_dir, demo=demo, gateway_port=gateway_port,
               start_timeout_s=start_timeout_s, stall_s=stall_s)  # fmt: skip
        _wait_for_a_stop(running.system)
    except (Stop, KeyboardInterrupt):
        say("\nstopping")
    except (RuntimeError, OSError, httpx.HTTPError) as error:  # said as such, no traceback
        say(f"\n{error}")
        status = 1
    finally:
        _on_stop_signals(_still_stopping)
        running.stop()
        say("stopped")
    return status


def _start(
    running: Running,
    *,
    state_dir: Path,
    demo: bool,
    gateway_port: int,
    start_timeout_s: float,
    stall_s: float,
) -> None:
    settings = ServiceSettings()
    urls, running.embedded = ensure_services(
        os.environ.get("DATABASE_URL"), os.environ.get("NATS_URL"), os.environ.get("REDIS_URL"),
        state_dir, dev_group=running.group, report=say,
        nats_authorization=(settings.subject_root, settings.jetstream_stream),
    )  # fmt: skip
    for server in running.embedded:
        say(f"started embedded {server.name} on port {server.port}")
    # An embedded NATS knows each process by its own user (vitrine/nats_auth.py).
    passwords = next((s.passwords for s in running.embedded if s.name == "nats"), {})
    credentials = {
        name: {"NATS_USER": name, "NATS_PASSWORD": passwords[name]}
        for name in SERVICES
        if name in passwords
    }
    if passwords:
        say(f"nats users and passwords (admin for the tools): {state_dir / 'nats' / 'auth.conf'}")
    if ensure_database(urls["DATABASE_URL"]):
        say(f"created database {printable_url(urls['DATABASE_URL'])}")
    os.environ.update(urls)
    running.mail, mail_note = _start_mail_catcher(state_dir)
    _migrate()
    system = running.system = System(
        env=urls,
        ports={
            "streams": int(os.environ.get("STREAMS_PORT", 8001)),
            "products": int(os.environ.get("PRODUCTS_PORT", 8002)),
            "chat": int(os.environ.get("CHAT_PORT", 8003)),
            "analytics": int(os.environ.get("ANALYTICS_PORT", 8004)),
            "notifications": int(os.environ.get("NOTIFICATIONS_PORT", 8005)),
            "webhooks": int(os.environ.get("WEBHOOKS_PORT", 8006)),
            "gateway": gateway_port,
        },
        log_dir=state_dir.absolute() / "logs",
        group=running.group,
        per_service=credentials,
    )
    say(f"starting {', '.join(SERVICES)} (logs in {system.log_dir})")
    system.start(timeout_s=start_timeout_s, stall_s=stall_s, report=say)
    running.video, video_note = _start_nginx_rtmp(state_dir, running.group, system.url("streams"))
    gateway = system.url("gateway")
    admin = issue_token(
        secret=ServiceSettings().jwt_secret.get_secret_value(),
        user_id="dev-admin",
        name="Admin",
        role="admin",
    )
    say()
    if demo:
        live = asyncio.run(load_demo(gateway, admin_token=admin))
        say(f"demo live: {gateway}/api/live/streams/{live['id']}")
        say(f"           websocket ws://127.0.0.1:{gateway_port}/ws/live/{live['id']}")
        _say_obs(live, video_note)
    say(f"viewer:    {gateway}/live    admin console: {gateway}/admin")
    say(f"gateway:   {gateway}  (API docs {gateway}/docs)")
    say(f"logs:      {system.log_dir}")
    say(f"e-mails:   {mail_note}")
    say(f"admin token (12 h):\n{admin}")
    say("Ctrl-C stops everything.")


def _say_obs(live: dict[str, Any], video_note: str) -> None:
    """What OBS needs to publish to the demo live (Settings → Stream → Service: Custom)."""
    obs = live.get("obs") or {}
    say(f"OBS:       server {obs.get('server')}   stream key {obs.get('stream_key')}")
    say(f"           ({video_note})")


def _migrate() -> None:
    async def run() -> None:
        for name in SERVICES:
            chosen = spec(name)
            if chosen.migrate is None:
                continue
            started = time.monotonic()
            try:
                await chosen.migrate(chosen.settings())
            except Exception as error:
                raise RuntimeError(
                    f"migrating {name} failed: {type(error).__name__}: {error}"
                ) from None
            say(f"  {name:<10} migrated in {time.monotonic() - started:.1f} s")

    say("migrating the database")
    asyncio.run(run())


def _start_nginx_rtmp(
    state_dir: Path, group: ProcessGroup, streams_url: str
) -> tuple[nginx_rtmp.NginxRtmp | None, str]:
    """nginx-rtmp from deploy/nginx-rtmp/ where the streams service expects it (RTMP_INGEST_URL,
    HLS_BASE_URL), unless it cannot run here or something already listens there; and a note on
    what OBS reaches."""
    settings = StreamsSettings()
    ingest, hls = urlsplit(settings.rtmp_ingest_url), urlsplit(settings.hls_base_url)
    if ingest.hostname not in LOCAL_HOSTS or hls.hostname not in LOCAL_HOSTS:
        return None, "the video server is elsewhere: RTMP_INGEST_URL"
    rtmp_port, http_port = ingest.port or 1935, hls.port or 80
    if port_open("127.0.0.1", rtmp_port) or port_open("127.0.0.1", http_port):
        say(f"nginx-rtmp: ports {rtmp_port}/{http_port} taken, using what listens there")
        return None, f"what listens on port {rtmp_port} receives it"
    if (reason := nginx_rtmp.unavailable()) is not None:
        say(f"nginx-rtmp not started: {reason}")
        return None, f"nothing receives it here: {reason}"
    server = nginx_rtmp.NginxRtmp(
        root=state_dir.absolute() / "nginx-rtmp",
        callbacks_url=f"{streams_url}/webhooks",
        secret=settings.rtmp_callback_secret.get_secret_value(),
        rtmp_port=rtmp_port,
        http_port=http_port,
        group=group,
    )
    try:
        server.start()
    except (RuntimeError, ValueError) as error:  # ValueError: a secret unfit for a URL
        say(f"nginx-rtmp not started: {error}")
        return None, f"nothing receives it here: nginx-rtmp did not start ({error})"
    say(f"started nginx-rtmp: OBS publishes to {server.ingest_url}, replays as MP4")
    return server, f"nginx-rtmp receives it on port {rtmp_port}; the live goes on air with it"


def _start_mail_catcher(state_dir: Path) -> tuple[Any, str]:
    """An SMTP server keeping what the notifications service sends as .eml files, where
    SMTP_URL points, unless it points elsewhere or something listens there; and where the
    messages are."""
    from chassis.mailer import SmtpServer
    from services.notifications.settings import NotificationsSettings

    try:
        server = SmtpServer.from_url(NotificationsSettings().smtp_url)
    except ValueError as error:  # the notifications service will say so too, and not start
        return None, str(error)
    if server.hostname not in LOCAL_HOSTS:
        return None, f"sent through {server.hostname}:{server.port} (SMTP_URL)"
    if port_open("127.0.0.1", server.port):
        return None, f"sent to what listens on port {server.port} (SMTP_URL)"
    try:
        from vitrine.mailcatcher import MailCatcher
    except ImportError:  # aiosmtpd comes with the development packages
        return None, "nothing catches them here: aiosmtpd is not installed (make install)"
    directory = state_dir.absolute() / "mail"
    try:
        catcher = MailCatcher(host="127.0.0.1", port=server.port, directory=directory).start()
    except (OSError, RuntimeError) as error:
        return None, f"nothing catches them here: the SMTP catcher did not start ({error})"
    say(f"started an SMTP catcher on port {server.port}: e-mails kept in {directory}")
    return catcher, f"caught in {directory} (one .eml file each, SMTP on port {server.port})"


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def _still_stopping(signum: int, frame: object) -> None:
    say(f"{signal.Signals(signum).name}: still stopping")


def _on_stop_signals(handler: Any) -> None:
    # Set for each: a process started in the background inherits SIGINT ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def _wait_for_a_stop(system: System | None) -> None:
    """Until a stop signal, or a service stopping by itself (which is said, with its log)."""
    from vitrine.progress import log_tail

    assert system is not None
    while True:
        for name, process in system.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} stopped (exit {process.returncode}); the last lines of its log, "
                    f"{system.log_path(name)}:\n{log_tail(system.log_path(name))}"
                )
        time.sleep(0.5)
