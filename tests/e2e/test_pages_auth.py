"""The dev sign-in exists outside production only; the pages themselves are public."""

import httpx
from asgi_lifespan import LifespanManager

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

STRONG = "x" * 40


async def test_in_production_the_dev_sign_in_does_not_exist(env):
    settings = GatewaySettings(**{**env, "vitrine_env": "production", "jwt_secret": STRONG,
                                  "vitrine_secret_key": STRONG, "nats_user": "gateway",
                                  "nats_password": STRONG})  # fmt: skip
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client,
    ):
        answer = await client.post("/dev/sign-in", json={"role": "admin", "name": "Mallory"})
        assert answer.status_code == 404
        assert "token" not in answer.text
        assert (await client.get("/live")).status_code == 200


async def test_outside_production_the_dev_sign_in_gives_a_working_token(env, gateway):
    answer = await gateway.post("/dev/sign-in", json={"role": "admin", "name": "Dev"})
    assert answer.status_code == 200
    token = answer.json()["token"]
    settings = await gateway.get("/api/live/settings", headers={"Authorization": f"Bearer {token}"})
    assert settings.status_code == 200
