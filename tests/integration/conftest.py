"""What the service tests share: the run's JetStream, an admin's headers, and a real SMTP
server on loopback for each module that asks for one."""

from collections.abc import AsyncIterator, Iterator

import pytest
from nats.js import JetStreamContext

from tests.conftest import auth
from tests.support.consumer_world import world  # noqa: F401 (a fixture, for consumer tests)
from tests.support.services import jetstream
from vitrine.mailcatcher import MailCatcher
from vitrine.system import free_port


@pytest.fixture(scope="module")
async def js(env: dict) -> AsyncIterator[JetStreamContext]:
    async with jetstream(env) as context:
        yield context


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return auth(tokens["admin"])


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailCatcher]:
    with MailCatcher(port=free_port()) as catcher:
        yield catcher
