"""What the gateway's routes and sockets stand on, built once in `create_app`'s lifespan."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from services.gateway.fanout import Fanout
from services.gateway.limits import SubscribeLimits
from services.gateway.live import Visibility
from services.gateway.presence import Presence
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Upstream


@dataclass(frozen=True)
class Gateway:
    settings: GatewaySettings
    upstream: Upstream  # the one HTTP client to the services
    visibility: Visibility  # may viewers watch a live
    fanout: Fanout  # one JetStream subscription per live with viewers here
    presence: Presence  # who watches through this gateway (Redis)
    subscribe_limits: SubscribeLimits  # reminder subscriptions per client (Redis)


def gateway_of(app: FastAPI) -> Gateway:
    gateway: Gateway = app.state.gateway
    return gateway


def _gateway(request: Request) -> Gateway:
    return gateway_of(request.app)


GatewayDep = Annotated[Gateway, Depends(_gateway)]
