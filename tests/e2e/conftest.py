"""nginx-rtmp for real, for the end-to-end tests that publish video: Debian's nginx and RTMP
module run from deploy/nginx-rtmp/ (its nginx.conf and record-done.sh) on spare ports, calling
the system through the gateway, and chosen in the video settings for the module's lives."""

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.conftest import auth
from vitrine import nginx_rtmp
from vitrine.system import System, free_port

GRACE_S = 2  # how long the module's lives wait for an encoder that left


@pytest.fixture(scope="module")
def nginx(system: System) -> Iterator[nginx_rtmp.NginxRtmp]:
    """nginx-rtmp from deploy/nginx-rtmp/, its callbacks sent through the gateway."""
    server = nginx_rtmp.NginxRtmp(
        root=Path(tempfile.mkdtemp(prefix="vitrine-nginx-")),
        callbacks_url=f"{system.url('gateway')}/webhooks",
        secret=INSECURE_RTMP_CALLBACK_SECRET,
        rtmp_port=free_port(),
        http_port=free_port(),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
async def on_test_nginx(
    system: System, nginx: nginx_rtmp.NginxRtmp, tokens: dict
) -> AsyncIterator[None]:
    """New lives are created on the test nginx, with a short reconnect grace."""
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=15) as gateway:
        admin = auth(tokens["admin"])
        answer = await gateway.put(
            "/api/live/settings",
            json={
                "platform": "nginx_rtmp",
                "config": {
                    "ingest_url": nginx.ingest_url,
                    "hls_base_url": nginx.hls_base_url,
                    "replay_base_url": nginx.replay_base_url,
                    "control_url": nginx.control_url,
                    "reconnect_grace_s": GRACE_S,
                },
            },
            headers=admin,
        )
        assert answer.status_code == 200, answer.text
        yield
        await gateway.put("/api/live/settings", json={"platform": "nginx_rtmp"}, headers=admin)
