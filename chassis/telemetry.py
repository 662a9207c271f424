"""OpenTelemetry traces and Prometheus metrics."""

import os
import re
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# By route template (`/api/live/streams/{stream_id}`), never the path itself: bounded labels.
HTTP_REQUESTS = Counter(
    "vitrine_http_requests_total", "HTTP requests served", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "vitrine_http_request_seconds", "HTTP request duration", ["service", "method", "route"]
)
UNROUTED = "unrouted"  # a path no route matched (404s, scanners)


def setup_tracing(service_name: str) -> None:
    """Install a tracer provider once per process; export over OTLP when OTEL_* says where."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


# Query parameters whose values are a person's (an admin's GDPR request) or open their
# subscription (an e-mail's link): kept out of traces, whoever collects them.
PRIVATE_QUERY = frozenset({"email", "user_id", "token"})
URL_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.path", "url.query")
# Two base64url parts or more joined by dots, each long: a signed link's token or a JWT.
SIGNED_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}(\.[A-Za-z0-9_-]{16,})+")


def instrument(app: FastAPI, service_name: str) -> None:
    setup_tracing(service_name)
    FastAPIInstrumentor.instrument_app(
        app,
        # A websocket's span would stay open as long as its viewer watches (hours).
        excluded_urls="healthz,readyz,metrics,ws/live",
        server_request_hook=hide_private_query,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )


def hide_private_query(span: Span, scope: dict[str, Any]) -> None:
    """The request span's URL attributes with the private parameters' values replaced, and a
    signed token in the path (an unsubscribe link's) too."""
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("path", "")
    if not span.is_recording() or not (query or SIGNED_TOKEN.search(path)):
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if not isinstance(value, str):
            continue
        if name == "url.query":
            span.set_attribute(name, redacted_query(value))
            continue
        head, mark, tail = value.partition("?")
        hidden = SIGNED_TOKEN.sub("REDACTED", head)
        span.set_attribute(name, f"{hidden}?{redacted_query(tail)}" if mark else hidden)


def redacted_query(query: str) -> str:
    """`email=a%40b.c&x=1` → `email=REDACTED&x=1`."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(key, "REDACTED" if key in PRIVATE_QUERY else value) for key, value in pairs])


def _event_type(subject: str) -> str:
    """`product.featured` of `live.<stream_id>.product.featured`: a span's name, bounded."""
    return ".".join(subject.split(".")[-2:])


def message_span(
    operation: str, subject: str, headers: Mapping[str, str] | None, **attributes: Any
) -> AbstractContextManager[Span]:
    """A span for one event on the bus, continuing the trace its headers carry: `publish` (the
    outbox relay: a producer span) or `process` (a consumer, the gateway's fan-out)."""
    kind = SpanKind.PRODUCER if operation == "publish" else SpanKind.CONSUMER
    return trace.get_tracer("vitrine").start_as_current_span(
        f"{operation} {_event_type(subject)}",
        context=propagate.extract(dict(headers or {})),
        kind=kind,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": operation,
            "messaging.destination.name": subject,
            **{f"messaging.{key}": value for key, value in attributes.items()},
        },
    )


def publishing(subject: str, headers: Mapping[str, str]) -> tuple[Span, dict[str, str]]:
    """A producer span for an event the outbox relay publishes (a child of the trace the row
    was written in), and the headers to send it with, which carry that span to its consumers.
    The caller ends the span."""
    span = trace.get_tracer("vitrine").start_span(
        f"publish {_event_type(subject)}",
        context=propagate.extract(dict(headers)),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "publish",
            "messaging.destination.name": subject,
        },
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, {**headers, **carrier}


def trace_headers() -> dict[str, str]:
    """The current trace context, to travel in NATS headers or outgoing HTTP calls."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class MetricsMiddleware:
    """Counts requests and their duration per status (pure ASGI, no body buffering)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"]
            # The router notes the route it chose in the scope, which it shares with us.
            route = getattr(scope.get("route"), "path", None) or UNROUTED
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(time.perf_counter() - started)
