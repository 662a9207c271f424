"""Async SQLAlchemy/SQLModel engine and sessions over asyncpg."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chassis.errors import DatabaseUnavailable


def async_url(database_url: str) -> str:
    """Accept `postgresql://` or `postgres://` URLs (as most platforms give them) for asyncpg."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    database_url: str,
    *,
    schema: str,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
) -> AsyncEngine:
    """An engine whose connections see only the service's schema by default.

    It holds at most `pool_size + max_overflow` connections, waits `pool_timeout_s` for a free
    one and `connect_timeout_s` for a new one; past either, or when the server refuses, the
    request fails with `DatabaseUnavailable` or SQLAlchemy's pool `TimeoutError` (503)."""
    engine = create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": schema},
            "timeout": connect_timeout_s,
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    return engine


def _connect_or_unavailable(
    dialect: Dialect, record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """asyncpg raises a bare OSError or TimeoutError when no connection can be made, which
    SQLAlchemy passes on as it is: said here for what it is."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as error:
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
