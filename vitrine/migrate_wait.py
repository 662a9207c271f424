"""`vitrine migrate --wait`: wait, without migrating, until services' schemas are at the newest
version of the migrations this image holds, or past it (a newer release migrated them).

On Kubernetes the migrate Job applies the migrations once per rollout; each service's pods run
this as an init container, so a pod of the new release starts only once its tables exist, while
the pods of the previous release go on serving (maxUnavailable 0). Reads only: the pods need no
right to change the schema.
"""

import asyncio
import importlib
import logging
import time
from pathlib import Path

from asyncpg import CannotConnectNowError, PostgresConnectionError
from sqlalchemy.exc import DBAPIError

from chassis.migrations import is_migrated
from vitrine.services import spec

log = logging.getLogger(__name__)


def migrations_dir(service: str) -> Path:
    """Every service keeps its Alembic scripts in `services/<name>/migrations` (DESIGN layout)."""
    package = importlib.import_module(f"services.{service}")
    assert package.__file__ is not None
    return Path(package.__file__).with_name("migrations")


async def behind(services: list[str]) -> list[str]:
    """The services (among those with a schema) whose schema is not at the newest version."""
    late = []
    for name in services:
        chosen = spec(name)
        if chosen.migrate is None:
            continue  # the gateway keeps nothing in PostgreSQL
        settings = chosen.settings()
        try:
            current = await is_migrated(
                migrations_dir=migrations_dir(name),
                database_url=settings.database_url,
                schema=settings.schema_for(name),
            )
        except (OSError, DBAPIError, PostgresConnectionError, CannotConnectNowError) as error:
            # Not reachable, starting up, or refusing connections yet.
            log.info("%s: cannot check the schema yet (%s)", name, error)
            current = False
        if not current:
            late.append(name)
    return late


async def wait_until_migrated(
    services: list[str], *, timeout_s: float, interval_s: float = 2.0
) -> list[str]:
    """Poll until every schema is migrated; returns those still behind after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        late = await behind(services)
        if not late or time.monotonic() >= deadline:
            return late
        log.info("waiting for the migrations of %s", ", ".join(late))
        await asyncio.sleep(interval_s)
