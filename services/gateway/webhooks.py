"""Which service receives a provider's or a shop's webhook: by its source, and for the shops by
its topic header (orders go to analytics, the catalog's changes to products). The service checks
the signature over the raw body; the gateway only routes."""

from collections.abc import Mapping

# Sources whose every webhook goes to one service.
OWNERS = {
    "nginx-rtmp": "streams",
    "mux": "streams",
    "ivs": "streams",
}
# The shops: the header naming the topic, and the owner of each topic family (`<family>/…` for
# Shopify, `<family>.…` for WooCommerce). Anything else — WooCommerce's unsigned ping has no
# topic — goes to analytics, which answers pings and acknowledges topics it does not follow.
SHOPS = {
    "shopify": (
        "x-shopify-topic",
        "/",
        {"orders": "analytics", "refunds": "analytics",
         "products": "products", "inventory_levels": "products"},
    ),
    "woocommerce": ("x-wc-webhook-topic", ".", {"order": "analytics", "product": "products"}),
}  # fmt: skip
SHOP_DEFAULT = "analytics"


def webhook_owner(source: str, headers: Mapping[str, str]) -> str | None:
    """The service a webhook from `source` goes to; none for an unknown source."""
    if source in OWNERS:
        return OWNERS[source]
    if source not in SHOPS:
        return None
    header, separator, families = SHOPS[source]
    topic = (headers.get(header) or "").strip().lower()
    return families.get(topic.split(separator, 1)[0], SHOP_DEFAULT)
