"""Settings of the products service (12-factor, read from the environment)."""

from pydantic import AliasChoices, Field, SecretStr

from chassis.settings import ServiceSettings


def _named(setting: str) -> AliasChoices:
    return AliasChoices(f"shop_{setting}", f"woocommerce_{setting}")


class ProductsSettings(ServiceSettings):
    products_port: int = 8002
    # Products cached from the shop are fetched again once older than this (`SHOP_*`, or the
    # `WOOCOMMERCE_*` names of the first release).
    shop_cache_ttl_s: float = Field(300.0, ge=0, validation_alias=_named("cache_ttl_s"))
    shop_timeout_s: float = Field(10.0, gt=0, validation_alias=_named("timeout_s"))
    # A CA bundle to trust for the shop's HTTPS (a shop behind a private CA); default: public CAs.
    shop_ca_bundle: str | None = Field(None, validation_alias=_named("ca_bundle"))
    # How often due offers are closed and pending coupons told to the shop.
    offer_tick_s: float = Field(1.0, gt=0)
    # A coupon the shop refused or could not take is tried again after 2, 4, 8 … seconds, at most
    # this long apart.
    coupon_retry_base_s: float = Field(2.0, gt=0)
    coupon_retry_max_s: float = Field(300.0, gt=0)
    # The Shopify app's secret (webhooks are signed with it), and WooCommerce → Settings →
    # Advanced → Webhooks → Secret. A comma-separated list while rotating; unset: every webhook
    # of that shop is refused.
    shopify_webhook_secret: SecretStr | None = None
    woocommerce_webhook_secret: SecretStr | None = None
