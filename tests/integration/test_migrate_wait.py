"""`vitrine migrate --wait` (the Kubernetes init container): it waits for the migrate Job and
never migrates itself."""

import secrets

import asyncpg
import pytest
from typer.testing import CliRunner

from services.streams.app import migrate as migrate_streams
from services.streams.settings import StreamsSettings
from vitrine.cli import app
from vitrine.migrate_wait import behind, wait_until_migrated
from vitrine.system import free_port


@pytest.fixture
def prefix(env, monkeypatch: pytest.MonkeyPatch):
    """Schemas of the test's own, as the services' settings read them from the environment."""
    chosen = f"wait{secrets.token_hex(3)}_"
    for name in ("database_url", "nats_url", "redis_url", "vitrine_env"):
        monkeypatch.setenv(name.upper(), env[name])
    monkeypatch.setenv("DB_SCHEMA_PREFIX", chosen)
    return chosen


async def schemas(env, prefix: str) -> set[str]:
    conn = await asyncpg.connect(env["database_url"])
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{prefix}%"
        )
        return {row["nspname"] for row in rows}
    finally:
        await conn.close()


async def test_a_schema_is_behind_until_migrated_and_the_gateway_never_is(env, prefix) -> None:
    assert await behind(["streams", "gateway"]) == ["streams"]
    await migrate_streams(StreamsSettings(**{**env, "db_schema_prefix": prefix}))
    assert await behind(["streams", "gateway"]) == []
    assert await behind(["chat"]) == ["chat"]


async def test_a_version_newer_than_these_migrations_is_past_the_head_an_older_one_behind(
    env, prefix
) -> None:
    await migrate_streams(StreamsSettings(**{**env, "db_schema_prefix": prefix}))
    conn = await asyncpg.connect(env["database_url"])
    try:
        table = f'"{prefix}streams".alembic_version'
        # A newer release migrated it (a rollback, or its Job ran first): not behind.
        await conn.execute(f"UPDATE {table} SET version_num = 'f00d_from_a_newer_release'")
        assert await behind(["streams"]) == []
        await conn.execute(f"UPDATE {table} SET version_num = '0001'")  # a known ancestor
        assert await behind(["streams"]) == ["streams"]
        await conn.execute(f"DELETE FROM {table}")
        assert await behind(["streams"]) == ["streams"]
    finally:
        await conn.close()


async def test_a_database_not_reachable_yet_is_behind_not_an_error(
    prefix, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/vitrine")
    assert await behind(["streams"]) == ["streams"]


async def test_waiting_gives_up_after_the_timeout_and_creates_nothing(env, prefix) -> None:
    assert await wait_until_migrated(["chat"], timeout_s=0.3, interval_s=0.1) == ["chat"]
    assert await schemas(env, prefix) == set()  # it only looked


def test_the_command_exits_1_while_behind_and_0_once_migrated(env, prefix) -> None:
    runner = CliRunner()
    late = runner.invoke(app, ["migrate", "--wait", "--timeout", "0", "products"])
    assert late.exit_code == 1
    assert "not migrated after 0s: products" in late.output
    assert runner.invoke(app, ["migrate", "products"]).exit_code == 0
    done = runner.invoke(app, ["migrate", "--wait", "--timeout", "0", "products"])
    assert done.exit_code == 0, done.output
    unknown = runner.invoke(app, ["migrate", "--wait", "nowhere"])
    assert unknown.exit_code == 2
