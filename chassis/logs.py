"""Log lines: one per event, JSON for the machines that collect them, text for people.

`LOG_FORMAT=json` (the default in production) writes each record as one JSON object with the
time, level, logger, message, the trace and span it happened in (OpenTelemetry), the request it
served (`request_id`: the caller's `X-Request-ID`, else one made here, passed on to the services
and given back in the answer), the live (`stream_id`) when the code names one
(`log.info(..., extra={"stream_id": …})`) and the error's traceback. `LOG_FORMAT=text` (the
default elsewhere, and `make dev`'s) is the same in one readable line.
"""

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a caller's own, if it looks like an id
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s%(context)s"


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """What the record belongs to: request, trace, live."""
    found: dict[str, Any] = {}
    if (current := request_id.get()) is not None:
        found["request_id"] = current
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    if (stream_id := getattr(record, "stream_id", None)) is not None:
        found["stream_id"] = str(stream_id)
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        context = _context(record)
        record.context = "".join(
            f" {key}={value}" for key, value in context.items() if key != "span_id"
        )
        return super().format(record)


def configure(log_format: str, *, level: int = logging.INFO, stream: Any = None) -> None:
    """Every record of the process through one handler on stderr (or `stream`), in
    `log_format`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RequestIdMiddleware:
    """Each HTTP request gets its id (pure ASGI): the caller's `X-Request-ID` when it looks like
    one, else a new one; every log line meanwhile carries it, and the answer says it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        current = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), current.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def request_headers() -> dict[str, str]:
    """The current request's id, for a call made on its behalf (gateway → service)."""
    current = request_id.get()
    return {REQUEST_ID_HEADER: current} if current is not None else {}
