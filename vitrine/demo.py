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
    """Create the demo live and its products unless they are there already; returns the live."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=10) as client:
        lives = (await client.get("/api/live/streams")).raise_for_status().json()
        for live in lives:
            if live["title"] == DEMO_TITLE and live["status"] != "ended":
                return live
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
        for position, product in enumerate(DEMO_PRODUCTS):
            product_id = await _catalog_product(client, product)
            offer = {"product_id": product_id, "position": position}
            if position == 1:  # the coat is presented first, at a live-only price
                offer |= {"is_featured": True, "special_price": "189.00", "promo_code": "LIVE20"}
            answer = await client.post(f"/api/live/streams/{live['id']}/products", json=offer)
            answer.raise_for_status()
        return live


async def _catalog_product(client: httpx.AsyncClient, product: dict[str, Any]) -> str:
    created = await client.post(
        "/api/catalog/products",
        json={**product, "currency": "EUR",
              "images": [f"https://picsum.photos/seed/{product['sku'].lower()}/600/600"]},
    )  # fmt: skip
    if created.status_code == 409:  # loaded by an earlier run: find it by its SKU
        found = await client.get("/api/catalog/products", params={"search": product["name"]})
        for item in found.raise_for_status().json()["items"]:
            if item["sku"] == product["sku"]:
                return str(item["id"])
    return str(created.raise_for_status().json()["id"])
