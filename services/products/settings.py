"""Settings of the products service (12-factor, read from the environment)."""

from pydantic import Field

from chassis.settings import ServiceSettings


class ProductsSettings(ServiceSettings):
    products_port: int = 8002
    # Products cached from WooCommerce are fetched again once older than this.
    woocommerce_cache_ttl_s: float = Field(300.0, ge=0)
    woocommerce_timeout_s: float = Field(10.0, gt=0)
    # A CA bundle to trust for the shop's HTTPS (a shop behind a private CA); default: public CAs.
    woocommerce_ca_bundle: str | None = None
