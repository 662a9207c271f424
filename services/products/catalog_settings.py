"""Where the catalog comes from: the admin's settings (the shop's secrets sealed at rest, masked
in every answer), and the shop they configure."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.outbox import Outbox
from chassis.secrets import MASK, SecretBox, mask
from services.products.models import SETTINGS_ROW_ID, SHOP_SOURCES, CatalogSettings, Source
from services.products.schemas import (
    CatalogSettingsRead,
    CatalogSettingsWrite,
    ShopifyRead,
    WooCommerceRead,
)
from services.products.settings import ProductsSettings
from services.products.shopify import ShopifyShop
from services.products.shops import Shop
from services.products.woocommerce import WooCommerceShop

DEFAULT_OFFER_WINDOW_H = 24

WOOCOMMERCE_SECRETS = ("consumer_key", "consumer_secret")
SHOPIFY_SECRETS = ("shopify_access_token",)
NO_CHECKOUT = (
    "the local catalog has no checkout: set checkout_url_template, or connect WooCommerce or"
    " Shopify"
)


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the session; built once in `create_app`."""

    settings: ProductsSettings
    outbox: Outbox
    box: SecretBox
    http: httpx.AsyncClient


class InvalidCatalogSettings(ValueError):
    """The settings name a source without what it needs."""


async def get_settings(*, session: AsyncSession, deps: Deps) -> CatalogSettingsRead:
    return _read(await session.get(CatalogSettings, SETTINGS_ROW_ID), box=deps.box)


def _keep_secrets(
    sealed: dict[str, str], *, box: SecretBox, names: dict[str, str | None]
) -> dict[str, str]:
    """Seal the secrets sent; those left out, or sent back masked, keep their stored value."""
    for name, value in names.items():
        if value and not value.startswith(MASK):
            sealed[name] = box.seal(value)
    return sealed


def _https(url: object, what: str) -> str:
    text = str(url).rstrip("/")
    if not text.startswith("https://"):
        raise InvalidCatalogSettings(f"{what} must be https:// (keys travel with it)")
    return text


async def put_settings(
    *, session: AsyncSession, deps: Deps, data: CatalogSettingsWrite
) -> CatalogSettingsRead:
    """Choose the source. Secrets left out, or sent back masked, keep their stored value; stored
    keys never follow a shop to another address (they must be typed again)."""
    await session.execute(
        insert(CatalogSettings)
        .values(id=SETTINGS_ROW_ID, source=Source.LOCAL, config={}, secrets_sealed={})
        .on_conflict_do_nothing()
    )
    row = await session.get(
        CatalogSettings, SETTINGS_ROW_ID, with_for_update=True, populate_existing=True
    )
    assert row is not None
    config: dict[str, Any] = {"offer_window_h": data.offer_window_h}
    sealed: dict[str, str] = {}
    if data.woocommerce is not None:
        url = _https(data.woocommerce.url, "the shop's URL")
        kept = row.secrets_sealed if url == row.config.get("woocommerce_url") else {}
        config["woocommerce_url"] = url
        sealed |= _keep_secrets(
            {name: kept[name] for name in WOOCOMMERCE_SECRETS if name in kept},
            box=deps.box,
            names={name: getattr(data.woocommerce, name) for name in WOOCOMMERCE_SECRETS},
        )
    if data.shopify is not None:
        url = _https(data.shopify.url, "the Shopify shop's URL")
        kept = row.secrets_sealed if url == row.config.get("shopify_url") else {}
        config["shopify_url"] = url
        if data.shopify.storefront_url is not None:
            config["shopify_storefront_url"] = _https(
                data.shopify.storefront_url, "the storefront's URL"
            )
        sealed |= _keep_secrets(
            {name: kept[name] for name in SHOPIFY_SECRETS if name in kept},
            box=deps.box,
            names={"shopify_access_token": data.shopify.access_token},
        )
    if data.source is Source.WOOCOMMERCE and (
        "woocommerce_url" not in config or any(name not in sealed for name in WOOCOMMERCE_SECRETS)
    ):
        raise InvalidCatalogSettings("WooCommerce needs its url, consumer_key and consumer_secret")
    if data.source is Source.SHOPIFY and (
        "shopify_url" not in config or any(name not in sealed for name in SHOPIFY_SECRETS)
    ):
        raise InvalidCatalogSettings("Shopify needs its url and access_token")
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
        return CatalogSettingsRead(source=Source.LOCAL, checkout_missing=NO_CHECKOUT)
    woocommerce = shopify = None
    if "woocommerce_url" in row.config:
        woocommerce = WooCommerceRead(
            url=row.config["woocommerce_url"],
            **{
                name: _masked(row.secrets_sealed.get(name), box=box) for name in WOOCOMMERCE_SECRETS
            },
        )
    if "shopify_url" in row.config:
        shopify = ShopifyRead(
            url=row.config["shopify_url"],
            access_token=_masked(row.secrets_sealed.get("shopify_access_token"), box=box),
            storefront_url=row.config.get("shopify_storefront_url"),
        )
    template = row.config.get("checkout_url_template")
    return CatalogSettingsRead(
        source=row.source,
        woocommerce=woocommerce,
        shopify=shopify,
        checkout_url_template=template,
        offer_window_h=row.config.get("offer_window_h", DEFAULT_OFFER_WINDOW_H),
        checkout_missing=NO_CHECKOUT if row.source is Source.LOCAL and not template else None,
        updated_at=row.updated_at,
    )


def _masked(sealed: str | None, *, box: SecretBox) -> str | None:
    if sealed is None:
        return None
    try:
        return mask(box.open(sealed))
    except ValueError:  # sealed under another VITRINE_SECRET_KEY
        return MASK


async def active_shop(*, session: AsyncSession, deps: Deps) -> tuple[Source, Shop] | None:
    """The shop when it is the active source, and which; None for the local catalog."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    if row is None or row.source not in SHOP_SOURCES:
        return None
    shop = shop_of(row, source=row.source, deps=deps)
    return (row.source, shop) if shop is not None else None


async def configured_shop(*, session: AsyncSession, deps: Deps, source: Source) -> Shop | None:
    """The shop the settings describe for `source`, active or not (cached products refresh from
    it)."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    if row is None:
        return None
    return shop_of(row, source=source, deps=deps)


def shop_of(row: CatalogSettings, *, source: Source, deps: Deps) -> Shop | None:
    """The shop of `source` as the settings describe it; None without its address and keys."""
    config, sealed = row.config, row.secrets_sealed
    if source is Source.WOOCOMMERCE and "woocommerce_url" in config:
        if any(name not in sealed for name in WOOCOMMERCE_SECRETS):
            return None
        return WooCommerceShop(
            client=deps.http,
            url=config["woocommerce_url"],
            consumer_key=deps.box.open(sealed["consumer_key"]),
            consumer_secret=deps.box.open(sealed["consumer_secret"]),
        )
    if source is Source.SHOPIFY and "shopify_url" in config:
        if "shopify_access_token" not in sealed:
            return None
        return ShopifyShop(
            client=deps.http,
            url=config["shopify_url"],
            access_token=deps.box.open(sealed["shopify_access_token"]),
            storefront_url=config.get("shopify_storefront_url"),
        )
    return None


async def offer_window_s(*, session: AsyncSession) -> int:
    """How long after a live its prices hold (the platform's default for new offers)."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    hours = row.config.get("offer_window_h", DEFAULT_OFFER_WINDOW_H) if row else None
    return int(hours if hours is not None else DEFAULT_OFFER_WINDOW_H) * 3600


async def checkout_template(*, session: AsyncSession) -> str | None:
    """The local catalog's checkout link template, if the admin set one."""
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    return row.config.get("checkout_url_template") if row else None
