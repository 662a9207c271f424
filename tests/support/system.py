"""The whole system started like `make dev` (one process per service), driven via the gateway.

One instance per test run, shared by the end-to-end and browser tests (a plugin of the root
conftest): two would share a database and steal each other's outbox rows."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.shopify import FakeShopify, running_shopify
from tests.support.tcpproxy import TcpProxy
from tests.support.woocommerce import FakeShop, running_shop
from vitrine.mailcatcher import MailCatcher
from vitrine.services import SERVICES, spec
from vitrine.system import System, free_port, free_ports


@pytest.fixture(scope="session")
def nats_proxy(env: dict) -> Iterator[TcpProxy]:
    """NATS as the streams service reaches it: tests may cut it to simulate an outage."""
    target = urlsplit(env["nats_url"])
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 4222)
    proxy.start()
    yield proxy
    proxy.close()


# The shops' webhook secrets, as the system's services are given them.
WOOCOMMERCE_WEBHOOK_SECRET = "woo-webhook-secret-for-the-tests"
SHOPIFY_WEBHOOK_SECRET = "shpss_shopify-app-secret-for-the-tests"


@pytest.fixture(scope="session")
def woocommerce_shop() -> Iterator[FakeShop]:
    """A WooCommerce stand-in the whole system trusts (its CA) and takes webhooks from."""
    with running_shop() as shop:
        yield shop


@pytest.fixture(scope="session")
def shopify_shop() -> Iterator[FakeShopify]:
    """A Shopify stand-in the whole system trusts and takes webhooks from."""
    with running_shopify() as shop:
        yield shop


@pytest.fixture(scope="session")
def mail() -> Iterator[MailCatcher]:
    """The SMTP server the system's notifications service sends to; it keeps every message."""
    with MailCatcher(port=free_port()) as catcher:
        yield catcher


def isolated(env: dict, tag: str, **overrides: object) -> dict:
    """The run's settings for a system of a test's own: its schemas, stream, subjects and Redis
    keys apart from the shared system's (the keys under the run's prefix, which it cleans)."""
    return {
        **env,
        "db_schema_prefix": f"{tag}_",
        "jetstream_stream": f"{env['jetstream_stream']}_{tag.upper()}",
        "subject_root": f"{tag}.{env['subject_root']}",
        "redis_prefix": f"{env['redis_prefix']}{tag}:",
        **overrides,
    }


async def migrate_all(settings: dict) -> None:
    """Every service's schema brought to its newest version, with these settings."""
    for name in SERVICES:
        chosen = spec(name)
        if chosen.migrate is not None:
            await chosen.migrate(chosen.settings(**settings))  # type: ignore[call-arg]


async def migrated_system(
    settings: dict, *, log_dir: Path, extra_env: dict[str, str] | None = None
) -> System:
    """A system (not started yet) of every service with `settings`, their schemas migrated."""
    await migrate_all(settings)
    return System(
        env={key.upper(): str(value) for key, value in settings.items()} | (extra_env or {}),
        ports=free_ports(SERVICES),
        log_dir=log_dir,
    )


@pytest.fixture(scope="session")
async def system(
    env: dict,
    nats_proxy: TcpProxy,
    tmp_path_factory,
    woocommerce_shop: FakeShop,
    shopify_shop: FakeShopify,
    mail: MailCatcher,
) -> AsyncIterator[System]:
    variables = {key.upper(): str(value) for key, value in env.items()}
    shops_ca = Path(tmp_path_factory.mktemp("shops")) / "shops.pem"
    shops_ca.write_bytes(
        Path(woocommerce_shop.ca_bundle).read_bytes() + Path(shopify_shop.ca_bundle).read_bytes()
    )
    variables |= {
        "SHOP_CA_BUNDLE": str(shops_ca),
        "WOOCOMMERCE_WEBHOOK_SECRET": WOOCOMMERCE_WEBHOOK_SECRET,
        "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_WEBHOOK_SECRET,
        "SMTP_URL": mail.url,
    }
    await migrate_all(env)
    running = System(
        env={**variables, "HUB_LINGER_S": "1"},
        ports=free_ports(SERVICES),
        log_dir=Path(tmp_path_factory.mktemp("logs")),
        per_service={"streams": {"NATS_URL": f"nats://127.0.0.1:{nats_proxy.port}"}},
    )
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)


@pytest.fixture
async def gateway(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as client:
        yield client
