"""Request metrics are labelled by route template, never by the path itself."""

import contextlib

import httpx
from prometheus_client import REGISTRY

from chassis.web import create_web_app


@contextlib.asynccontextmanager
async def _nothing(app):
    yield


def count(service: str, route: str, status: str) -> float:
    labels = {"service": service, "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("vitrine_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template_and_a_stray_path_by_none() -> None:
    app = create_web_app(service="metrics-probe", lifespan=_nothing, max_body_bytes=1000)

    @app.get("/lives/{live_id}")
    async def live(live_id: str) -> dict:
        return {"id": live_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for path in ("/lives/1", "/lives/2", "/lives/3", "/wp-login.php", "/.env"):
            await client.get(path)
    assert count("metrics-probe", "/lives/{live_id}", "200") == 3
    assert count("metrics-probe", "unrouted", "404") == 2
    assert count("metrics-probe", "/lives/1", "200") == 0
