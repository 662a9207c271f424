"""The gateway's one HTTP client to the services behind it."""

from typing import Any

import httpx
from fastapi import HTTPException, Request, Response

from chassis.telemetry import trace_headers

# Request headers a service needs; everything else stays at the gateway.
FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "idempotency-key")
# Never passed on, even for signed webhooks whose headers the service must see.
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade"}
# Response headers a caller needs back.
FORWARDED_RESPONSE_HEADERS = ("location", "retry-after", "www-authenticate")


class Upstream:
    def __init__(self, *, services: dict[str, str], timeout_s: float) -> None:
        self.services = services
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def close(self) -> None:
        await self.client.aclose()

    def _url(self, service: str, path: str) -> str:
        return self.services[service].rstrip("/") + path

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
        try:
            answer = await self.client.request(
                request.method,
                self._url(service, target),
                params=request.query_params,
                content=await request.body(),
                headers={**headers, **trace_headers()},
            )
        except httpx.TransportError:
            raise HTTPException(503, f"the {service} service is unavailable") from None
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
        headers = trace_headers()
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            answer = await self.client.request(
                method, self._url(service, path), json=body, headers=headers
            )
            return answer.status_code, answer.json() if answer.content else None, answer.headers
        except httpx.TransportError:
            raise HTTPException(503, f"the {service} service is unavailable") from None
        except ValueError:
            raise HTTPException(502, f"the {service} service answered garbage") from None

    async def get_json(
        self, service: str, path: str, *, token: str | None = None
    ) -> tuple[int, Any]:
        headers = trace_headers()
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            answer = await self.client.get(self._url(service, path), headers=headers)
        except httpx.TransportError:
            raise HTTPException(503, f"the {service} service is unavailable") from None
        try:
            return answer.status_code, answer.json() if answer.content else None
        except ValueError:  # not JSON: a proxy's error page, say
            raise HTTPException(502, f"the {service} service answered garbage") from None
