"""The database `make dev` uses: created when DATABASE_URL names one its server does not have."""

from urllib.parse import urlsplit, urlunsplit

from vitrine.embedded import _create_database_if_missing, _run_coroutine, _split_database_url


def printable_url(url: str) -> str:
    """A database URL as it may be shown: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _database_state(url: str) -> str:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        return "missing"
    await conn.close()
    return "there"


def ensure_database(database_url: str) -> bool:
    """Create the database DATABASE_URL names when its server has none of that name (through
    the server's `postgres` database, with the same credentials); whether it was created.
    Raises RuntimeError saying what to do when the server cannot be used."""
    admin_url, name = _split_database_url(database_url)
    shown = printable_url(database_url)
    try:
        if _run_coroutine(_database_state(database_url)) == "there":
            return False
    except Exception as error:
        raise RuntimeError(
            f"PostgreSQL at {shown} cannot be used ({type(error).__name__}: {error}); "
            "set DATABASE_URL to a server and database you can use"
        ) from None
    try:
        _run_coroutine(_create_database_if_missing(admin_url, name))
    except Exception as error:
        raise RuntimeError(
            f"database {name!r} does not exist at {shown} and could not be created through "
            f"{printable_url(admin_url)} ({type(error).__name__}: {error}); create it, or set "
            "DATABASE_URL to one that exists"
        ) from None
    return True
