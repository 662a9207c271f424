"""What every Vitrine HTTP app shares: errors, body limits, health, metrics, tracing."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis import errors, health
from chassis.health import ReadinessCheck
from chassis.inputs import InputGuard
from chassis.logs import RequestIdMiddleware
from chassis.telemetry import MetricsMiddleware, instrument

__all__ = ["ReadinessCheck", "create_web_app"]


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses request bodies over `max_bytes` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)


def create_web_app(
    *,
    service: str,
    lifespan: Callable,
    max_body_bytes: int,
    readiness: dict[str, ReadinessCheck] | None = None,
    **fastapi_kwargs: object,
) -> FastAPI:
    """A FastAPI app with Vitrine's error format (chassis.errors), input guard (chassis.inputs),
    body limit, `/healthz`, `/readyz` and `/metrics`."""
    app = FastAPI(title=f"Vitrine {service}", lifespan=lifespan, **fastapi_kwargs)  # type: ignore[arg-type]
    app.state.readiness = readiness or {}

    errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """Ready while the process can serve its requests (chassis.health); `?verbose` adds
        each check's details (required or tolerated, for how long it has been failing)."""
        results = await health.evaluate(app.state.readiness, service=service)
        body, status = health.report(results, verbose="verbose" in request.query_params)
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Outermost last: metrics see every answer, the boundary every error, the guard only bodies
    # within the size limit.
    app.add_middleware(InputGuard, exempt_body_prefixes=("/webhooks/",))
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(errors.ErrorBoundary)
    app.add_middleware(MetricsMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)  # every log line of a request names it
    instrument(app, service)
    return app
