"""What the service tests share: the run's JetStream and an admin's headers."""

from collections.abc import AsyncIterator

import pytest
from nats.js import JetStreamContext

from tests.conftest import auth
from tests.support.consumer_world import world  # noqa: F401 (a fixture, for consumer tests)
from tests.support.services import jetstream


@pytest.fixture(scope="module")
async def js(env: dict) -> AsyncIterator[JetStreamContext]:
    async with jetstream(env) as context:
        yield context


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return auth(tokens["admin"])
