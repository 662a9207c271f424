"""The gateway's one HTTP client to the services behind it.

A service's own answer, errors included, goes back as the service gave it. When the service gives
none, the gateway says which service and what happened: not reachable (503 + Retry-After), no
answer in time (504), the connection dropped mid-answer (502).
"""

import logging
from typing import Any

import httpx
from fastapi import HTTPException, Request, Response
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from chassis.errors import Throttled
from chassis.logs import request_headers

log = logging.getLogger(__name__)

RETRY_AFTER_S = "2"
# Below the services' keep-alive (`vitrine serve`: 30 s): the gateway drops an idle connection
# before the service may close it under a request on its way.
KEEPALIVE_EXPIRY_S = 10.0
IDEMPOTENT = ("GET", "HEAD")  # sent again once when a reused connection turns out closed

# Request headers a service needs; everything else stays at the gateway.
FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "idempotency-key")
# Never passed on, even for signed webhooks whose headers the service must see.
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade"}
# Response headers a caller needs back.
FORWARDED_RESPONSE_HEADERS = ("location", "retry-after", "www-authenticate")


class Upstream:
    def __init__(
        self,
        *,
        services: dict[str, str],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport`: by default TCP, retried once when a connection is refused."""
        self.services = services
        self.timeout_s = timeout_s
        self._failures: dict[str, Throttled] = {}
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=200,
                max_keepalive_connections=50,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            transport=transport or httpx.AsyncHTTPTransport(retries=1),
        )
        # A client span per call, which carries the trace to the service (traceparent).
        HTTPXClientInstrumentor.instrument_client(self.client)

    async def close(self) -> None:
        await self.client.aclose()

    def _url(self, service: str, path: str) -> str:
        return self.services[service].rstrip("/") + path

    async def _request(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call to `service` (with the request's id), its failures said as what they are
        and whose they are, and logged (now and then, during an outage)."""
        kwargs["headers"] = {**kwargs.get("headers", {}), **request_headers()}
        for attempt in (1, 2):
            try:
                return await self.client.request(method, self._url(service, path), **kwargs)
            except httpx.InvalidURL:  # a path no service route can match
                raise HTTPException(404, "Not Found") from None
            except (httpx.ConnectError, httpx.ConnectTimeout):
                raise self._failed(
                    service, 503, f"the {service} service is unavailable", retry=True
                ) from None
            except httpx.PoolTimeout:
                raise self._failed(
                    service, 503, "the gateway is busy, try again shortly", retry=True
                ) from None
            except httpx.TimeoutException:
                raise self._failed(
                    service,
                    504,
                    f"the {service} service did not answer within {self.timeout_s:g} s",
                ) from None
            except httpx.TransportError:
                if method in IDEMPOTENT and attempt == 1:
                    continue  # most likely a kept-alive connection the service had just closed
                raise self._failed(
                    service, 502, f"the {service} service closed the connection without an answer"
                ) from None
        raise AssertionError("unreachable")

    def _failed(self, service: str, status: int, why: str, *, retry: bool = False) -> HTTPException:
        throttled = self._failures.setdefault(service, Throttled(log))
        throttled.warning("answered %d: %s", status, why)
        return HTTPException(status, why, {"Retry-After": RETRY_AFTER_S} if retry else None)

    async def forward(
        self, request: Request, service: str, path: str | None = None, *, signed: bool = False
    ) -> Response:
        """Pass the caller's request to `service` as it is (token included) and its answer back.
        `signed`: a webhook, whose signature headers the service checks, so all headers go."""
        target = path or request.url.path
        if "/../" in target + "/" or "/./" in target + "/":
            # httpx would resolve them, reaching a route the gateway did not check.
            raise HTTPException(404, "not found")
        if signed:
            headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        else:
            headers = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := request.headers.get(k))}
        answer = await self._request(
            service,
            request.method,
            target,
            params=request.query_params,
            content=await request.body(),
            headers=headers,
        )
        kept = {k: v for k in FORWARDED_RESPONSE_HEADERS if (v := answer.headers.get(k))}
        return Response(
            content=answer.content,
            status_code=answer.status_code,
            headers=kept,
            media_type=answer.headers.get("content-type"),
        )

    async def send_json(
        self, method: str, service: str, path: str, *, body: Any, token: str | None = None
    ) -> tuple[int, Any, httpx.Headers]:
        """A command on the caller's behalf (e.g. a chat message from a websocket)."""
        headers = {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        answer = await self._request(service, method, path, json=body, headers=headers)
        try:
            return answer.status_code, answer.json() if answer.content else None, answer.headers
        except ValueError:
            raise HTTPException(502, f"the {service} service answered garbage") from None

    async def get_json(
        self, service: str, path: str, *, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        answer = await self._request(service, "GET", path, headers=headers)
        try:
            return answer.status_code, answer.json() if answer.content else None
        except ValueError:  # not JSON: a proxy's error page, say
            raise HTTPException(502, f"the {service} service answered garbage") from None
