"""A receiver of outbound webhooks, as a CRM or an automation platform is: a real HTTP server on
a free port (starlette + uvicorn on a thread) that checks every delivery's Standard Webhooks
signature with the `standardwebhooks` library, keeps what it got, and can be told to answer
500, to answer too late, or to answer 2xx slowly, for a while.

Each endpoint registered in a test is a path of its own (`receiver.url(name)`), whose secret the
test hands over once the service has shown it (`receiver.secrets[name] = secret`)."""

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.services import on_a_port


@dataclass(frozen=True)
class Received:
    name: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # the signature matched the endpoint's secret (or one of them)
    answered: int  # what the receiver answered (0: it hung past the sender's timeout)

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    # name → "ok", "fail" (500), "hang" (answers after `hang_s`) or "slow" (answers 2xx, but
    # only after `slow_s`: an answer still on its way when the sender stops)
    modes: dict[str, str] = field(default_factory=dict)
    hang_s: float = 3.0
    slow_s: float = 1.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def of(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.name == name]

    def delivered(self, name: str) -> list[Received]:
        """What this endpoint accepted (2xx), in the order it came."""
        return [r for r in self.of(name) if 200 <= r.answered < 300]

    async def hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        headers = dict(request.headers)
        verified = False
        if (secret := self.secrets.get(name)) is not None:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                pass
        mode = self.modes.get(name, "ok")
        accepted = 200 if verified else 401
        answered = {"ok": accepted, "slow": accepted, "fail": 500, "hang": 0}[mode]
        with self.lock:
            self.received.append(
                Received(name, headers.get("webhook-id", ""), headers, body, verified, answered)
            )
        if mode == "hang":
            await asyncio.sleep(self.hang_s)  # the sender gave up by then
            return Response(status_code=504)
        if mode == "slow":
            await asyncio.sleep(self.slow_s)
        return Response(status_code=answered)


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", receiver.hook, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    with on_a_port(config, name="webhook-receiver") as port:
        receiver.port = port
        yield receiver
