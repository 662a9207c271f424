"""A small demo through the public API: a scheduled live, ready to go on air."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

DEMO_TITLE = "Vitrine demo: the autumn collection"


async def load_demo(gateway_url: str, *, admin_token: str) -> dict[str, Any]:
    """Create the demo live unless one is already there; returns it."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=10) as client:
        existing = (await client.get("/api/live/streams")).raise_for_status().json()
        items = existing["items"] if isinstance(existing, dict) else existing
        for live in items:
            if live["title"] == DEMO_TITLE and live["status"] != "ended":
                return live
        created = await client.post(
            "/api/live/streams",
            json={
                "title": DEMO_TITLE,
                "description": "Three pieces presented live, with a live-only price.",
                "scheduled_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            },
        )
        return created.raise_for_status().json()
