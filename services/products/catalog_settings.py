"""Where the catalog comes from: the admin's settings (the shop's secrets sealed at rest, masked
in every answer), and the shop they configure."""

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.outbox import Outbox
from chassis.secrets import MASK, SecretBox, mask
from services.products.models import SETTINGS_ROW_ID, CatalogSettings, Source
from services.products.schemas import CatalogSettingsRead, CatalogSettingsWrite, WooCommerceRead
from services.products.settings import ProductsSettings
from services.products.woocommerce import WooCommerceShop

SECRETS = ("consumer_key", "consumer_secret")


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the session; built once in `create_app`."""

    settings: ProductsSettings
    outbox: Outbox
    box: SecretBox
    http: httpx.AsyncClient


class InvalidCatalogSettings(ValueError):
    """The settings name a source without what it needs."""


@dataclass(frozen=True)
class Checkout:
    """What building a checkout link needs: the shop's URL (WooCommerce) and the template."""

    shop_url: str | None
    template: str | None


async def get_settings(*, session: AsyncSession, deps: Deps) -> CatalogSettingsRead:
    return _read(await session.get(CatalogSettings, SETTINGS_ROW_ID), box=deps.box)


async def put_settings(
    *, session: AsyncSession, deps: Deps, data: CatalogSettingsWrite
) -> CatalogSettingsRead:
    """Choose the source. Secrets left out, or sent back masked, keep their stored value."""
    await session.execute(
        insert(CatalogSettings)
        .values(id=SETTINGS_ROW_ID, source=Source.LOCAL, config={}, secrets_sealed={})
        .on_conflict_do_nothing()
    )
    row = await session.get(
        CatalogSettings, SETTINGS_ROW_ID, with_for_update=True, populate_existing=True
    )
    assert row is not None
    config: dict[str, str] = {}
    sealed = dict(row.secrets_sealed)
    if data.woocommerce is not None:
        url = str(data.woocommerce.url).rstrip("/")
        if not url.startswith("https://"):
            raise InvalidCatalogSettings("the shop's URL must be https:// (keys travel with it)")
        if url != row.config.get("woocommerce_url"):
            # Stored keys never follow the shop to another address: they must be typed again.
            sealed = {}
        config["woocommerce_url"] = url
        for name in SECRETS:
            value = getattr(data.woocommerce, name)
            if value and not value.startswith(MASK):
                sealed[name] = deps.box.seal(value)
    else:
        sealed = {}
    if data.source is Source.WOOCOMMERCE and (
        "woocommerce_url" not in config or any(name not in sealed for name in SECRETS)
    ):
        raise InvalidCatalogSettings("WooCommerce needs its url, consumer_key and consumer_secret")
    if data.checkout_url_template is not None:
        template = str(data.checkout_url_template)
        if "{items}" not in template:
            raise InvalidCatalogSettings("checkout_url_template must contain {items}")
        config["checkout_url_template"] = template
    row.source = data.source
    row.config = config
    row.secrets_sealed = sealed
    row.updated_at = datetime.now(UTC)
    await session.commit()
    return _read(row, box=deps.box)


def _read(row: CatalogSettings | None, *, box: SecretBox) -> CatalogSettingsRead:
    if row is None:
        return CatalogSettingsRead(source=Source.LOCAL)
    shop = None
    if "woocommerce_url" in row.config:
        shop = WooCommerceRead(
            url=row.config["woocommerce_url"],
            **{name: _masked(row.secrets_sealed.get(name), box=box) for name in SECRETS},
        )
    return CatalogSettingsRead(
        source=row.source,
        woocommerce=shop,
        checkout_url_template=row.config.get("checkout_url_template"),
        updated_at=row.updated_at,
    )


def _masked(sealed: str | None, *, box: SecretBox) -> str | None:
    if sealed is None:
        return None
    try:
        return mask(box.open(sealed))
    except ValueError:  # sealed under another VITRINE_SECRET_KEY
        return MASK


async def active_shop(*, session: AsyncSession, deps: Deps) -> WooCommerceShop | None:
    """The WooCommerce shop when it is the active source; None for the local catalog."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    if row is None or row.source is not Source.WOOCOMMERCE:
        return None
    return shop_of(row, deps=deps)


async def configured_shop(*, session: AsyncSession, deps: Deps) -> WooCommerceShop | None:
    """The WooCommerce shop the settings describe, active or not (cached products refresh from
    it)."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    if row is None or "woocommerce_url" not in row.config:
        return None
    return shop_of(row, deps=deps)


def shop_of(row: CatalogSettings, *, deps: Deps) -> WooCommerceShop | None:
    if any(name not in row.secrets_sealed for name in SECRETS):
        return None
    return WooCommerceShop(
        client=deps.http,
        url=row.config["woocommerce_url"],
        consumer_key=deps.box.open(row.secrets_sealed["consumer_key"]),
        consumer_secret=deps.box.open(row.secrets_sealed["consumer_secret"]),
    )


async def checkout(*, session: AsyncSession) -> Checkout:
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    if row is None:
        return Checkout(shop_url=None, template=None)
    return Checkout(
        shop_url=row.config.get("woocommerce_url"),
        template=row.config.get("checkout_url_template"),
    )
