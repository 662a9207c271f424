"""The gateway's "may viewers watch this live?" against the real streams service, served on a port
behind a proxy that can slow it down or take it away: a crowd costs one call per live, and a
service that is slow or briefly away turns away no viewer of a live already known."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import httpx
import pytest
import uvicorn
from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.live import Visibility
from services.gateway.upstream import Upstream
from services.streams.app import create_app, migrate
from services.streams.settings import StreamsSettings
from tests.conftest import auth
from tests.support.services import on_a_port
from tests.support.tcpproxy import TcpProxy

CROWD = 500


class CountingLiveReads:
    """Counts the reads of one live that reach the service."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reads = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/live/streams/"):
            self.reads += 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
async def streams(env: dict) -> AsyncIterator[tuple[CountingLiveReads, str]]:
    settings = StreamsSettings(**env, db_schema_prefix="visibility_")
    await migrate(settings)
    counted = CountingLiveReads(create_app(settings))
    config = uvicorn.Config(counted, host="127.0.0.1", port=0, log_level="warning")
    with on_a_port(config, name="streams") as port:
        yield counted, f"http://127.0.0.1:{port}"


@pytest.fixture
def proxy(streams) -> Iterator[TcpProxy]:
    _, url = streams
    proxy = TcpProxy("127.0.0.1", int(url.rsplit(":", 1)[1]))
    proxy.start()
    yield proxy
    proxy.release_replies()
    proxy.close()


@pytest.fixture
async def upstream(proxy) -> AsyncIterator[Upstream]:
    upstream = Upstream(services={"streams": f"http://127.0.0.1:{proxy.port}"}, timeout_s=10)
    yield upstream
    await upstream.close()


async def scheduled_live(streams, tokens) -> str:
    _, url = streams
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(
            "/api/live/streams", json={"title": "Crowd"}, headers=auth(tokens["admin"])
        )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def test_a_crowd_arriving_together_costs_one_call(streams, upstream, tokens):
    counted, _ = streams
    stream_id = await scheduled_live(streams, tokens)
    made_up = str(uuid4())
    visibility = Visibility(upstream, seen_s=0.5)
    before = counted.reads
    answers = await asyncio.gather(*(visibility.visible(stream_id) for _ in range(CROWD)))
    assert all(answers)
    assert counted.reads - before == 1
    # The entry expired: the next wave again asks once, and a made-up id once.
    await asyncio.sleep(0.6)
    before = counted.reads
    answers = await asyncio.gather(
        *(visibility.visible(live) for _ in range(CROWD) for live in (stream_id, made_up))
    )
    assert answers == [True, False] * CROWD
    assert counted.reads - before == 2


async def test_a_slow_or_absent_streams_service_turns_no_viewer_of_a_known_live_away(
    streams, proxy, upstream, tokens
):
    stream_id = await scheduled_live(streams, tokens)
    visibility = Visibility(upstream, seen_s=0.2, stale_s=3.0)
    assert await visibility.visible(stream_id)
    await asyncio.sleep(0.3)

    # Slow: the refresh hangs, and the crowd is let in at once on what was known.
    proxy.hold_replies()
    crowd = asyncio.gather(*(visibility.visible(stream_id) for _ in range(CROWD)))
    assert all(await asyncio.wait_for(crowd, 5))  # not waiting for the hanging call (10 s)
    # Away: still let in, within the bound.
    proxy.cut()
    proxy.release_replies()
    assert all(await asyncio.gather(*(visibility.visible(stream_id) for _ in range(CROWD))))

    # Past the bound, what is known is too old to vouch for: the viewer is told to come back.
    await asyncio.sleep(3.2)
    with pytest.raises(HTTPException) as refused:
        await visibility.visible(stream_id)
    assert refused.value.status_code == 503
    # Back: answered again.
    proxy.start()
    assert await visibility.visible(stream_id)


async def test_an_unknown_live_waits_for_the_answer_instead_of_guessing(
    streams, proxy, upstream, tokens
):
    stream_id = await scheduled_live(streams, tokens)
    visibility = Visibility(upstream)
    proxy.hold_replies()
    asking = asyncio.gather(*(visibility.visible(stream_id) for _ in range(10)))
    await asyncio.sleep(0.5)
    assert not asking.done()
    proxy.release_replies()
    assert await asyncio.wait_for(asking, 5) == [True] * 10
