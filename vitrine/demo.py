"""A small demo through the public API: a scheduled live with three products, one featured."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

DEMO_TITLE = "Vitrine demo: the autumn collection"
DEMO_PRODUCTS = [
    {"sku": "DEMO-SCARF", "name": "Merino scarf", "price": "39.00", "stock": 40,
     "description": "Soft merino wool, 180 cm."},
    {"sku": "DEMO-COAT", "name": "Wool coat", "price": "229.00", "stock": 12,
     "description": "Double-breasted, fully lined."},
    {"sku": "DEMO-BOOTS", "name": "Leather boots", "price": "149.00", "stock": 25,
     "description": "Hand-stitched, rubber sole."},
]  # fmt: skip


async def load_demo(gateway_url: str, *, admin_token: str) -> dict[str, Any]:
    """Create the demo live and its products unless they are there already; returns the live
    (as its admin sees it: with the OBS server and stream key)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        product_ids = [await _catalog_product(client, product) for product in DEMO_PRODUCTS]
        cursor = None
        while True:  # the demo live, among the lives not ended
            query = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/api/live/streams", params=query)).raise_for_status().json()
            for live in page["items"]:
                if live["title"] == DEMO_TITLE and live["status"] != "ended":
                    return dict(live)
            if (cursor := page["next_cursor"]) is None:
                break
        live = (
            (
                await client.post(
                    "/api/live/streams",
                    json={
                        "title": DEMO_TITLE,
                        "description": "Three pieces presented live, with a live-only price.",
                        "scheduled_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        for position, product_id in enumerate(product_ids):
            offer: dict[str, Any] = {"product_id": product_id, "position": position}
            if position == 1:  # the coat is presented first, at a live-only price
                offer |= {"is_featured": True, "special_price": "189.00", "promo_code": "LIVE20"}
            answer = await client.post(f"/api/live/streams/{live['id']}/products", json=offer)
            answer.raise_for_status()
        return dict(live)


def picture_url(gateway_url: str, sku: str) -> str:
    """A demo product's picture, served by the gateway itself (no internet needed)."""
    return f"{gateway_url.rstrip('/')}/demo/{sku.lower()}.svg"


async def _catalog_product(client: httpx.AsyncClient, product: dict[str, Any]) -> str:
    """The catalog's product of that SKU, created (or its pictures brought up to date)."""
    images = [picture_url(str(client.base_url), product["sku"])]
    created = await client.post(
        "/api/catalog/products", json={**product, "currency": "EUR", "images": images}
    )
    if created.status_code != 409:
        return str(created.raise_for_status().json()["id"])
    found = await client.get("/api/catalog/products", params={"search": product["name"]})
    for item in found.raise_for_status().json()["items"]:
        if item["sku"] == product["sku"]:
            if item.get("images") != images:  # an earlier run's pictures (or another gateway's)
                answer = await client.put(
                    f"/api/catalog/products/{item['id']}", json={"images": images}
                )
                answer.raise_for_status()
            return str(item["id"])
    raise RuntimeError(f"the catalog refused {product['sku']} but has no such product")
