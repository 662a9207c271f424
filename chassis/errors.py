"""Vitrine's one error format, `{"detail": …}`, and how each kind of failure is answered.

- The client's mistake: its 4xx, at most one short log line, never a traceback.
- A dependency away (the database down, refusing connections or out of them): 503 with
  `Retry-After`, one log line now and then.
- A bug: 500 "internal error", logged with its traceback; the connection stays usable.

Every answer is rendered so that it can always be encoded: an error that echoes the client's
input (FastAPI's validation errors do) never fails on a lone surrogate.
"""

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.inputs import safe_text
from chassis.pages import InvalidCursor

_SURROGATE = re.compile("[\ud800-\udfff]")

log = logging.getLogger(__name__)

# How long a client should wait before trying again: a database that is down takes longer to
# come back than one whose connections are all taken for a moment.
RETRY_AFTER_DOWN_S = 5
RETRY_AFTER_BUSY_S = 2
LOG_EVERY_S = 10.0  # an outage is logged once in a while, not once per request

# SQLSTATE classes (or codes) that say the database cannot serve now, not that the query is wrong.
_UNAVAILABLE_STATES = ("08", "28", "3D000", "57P01", "57P02", "57P03")
_BUSY_STATES = ("53",)  # insufficient resources: 53300 "too many clients", memory, disk
# A transaction that lost a race (a deadlock, a serialization failure): the same request again
# moments later succeeds.
_RACE_STATES = ("40P01", "40001")


class DatabaseUnavailable(Exception):
    """No connection to the database could be made (refused, unreachable, timed out)."""


def _text(text: str) -> str:
    """`text` with each lone surrogate written as its escape (`\\ud800`), which UTF-8 encodes."""
    return _SURROGATE.sub(lambda found: f"\\u{ord(found[0]):04x}", text)


def safe(value: Any) -> Any:
    """`value` as JSON-able data that encodes as UTF-8 whatever the client sent."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes):
        return _text(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, dict):
        return {_text(str(key)): safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [safe(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _text(str(value))  # a ValueError in a validation error's context, a Decimal …


class ErrorResponse(JSONResponse):
    """A JSON error answer that always renders."""

    def render(self, content: Any) -> bytes:
        return super().render(safe(content))


def error_response(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    if not is_body_allowed_for_status_code(status):
        return Response(status_code=status, headers=headers)
    return ErrorResponse({"detail": detail}, status_code=status, headers=headers)


class Throttled:
    """Logs a warning at most once every LOG_EVERY_S, saying how many were left out."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.last = 0.0
        self.left_out = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_S:
            self.left_out += 1
            return
        if self.left_out:
            message += f" ({self.left_out} more since the last such line)"
        self.last, self.left_out = now, 0
        self.logger.warning(message, *args)


_outage_log = Throttled()


def _unavailable(request: Request, why: str, *, retry_after_s: int) -> Response:
    _outage_log.warning("database unavailable on %s %s: %s", request.method, request.url.path, why)
    return error_response(
        503, "the database is unavailable, try again shortly", {"Retry-After": str(retry_after_s)}
    )


async def http_error(request: Request, error: StarletteHTTPException) -> Response:
    return error_response(error.status_code, error.detail, error.headers)


async def invalid_cursor(request: Request, error: Exception) -> Response:
    return error_response(400, "invalid cursor")


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    return error_response(422, error.errors())


async def database_unavailable(request: Request, error: Exception) -> Response:
    busy = isinstance(error, PoolTimeout)  # every connection of the pool in use
    why = "no free connection in the pool" if busy else str(error.__cause__ or error)
    return _unavailable(
        request, why, retry_after_s=RETRY_AFTER_BUSY_S if busy else RETRY_AFTER_DOWN_S
    )


async def database_error(request: Request, error: DBAPIError) -> Response:
    state = str(getattr(error.orig, "sqlstate", "") or "")
    # Class 22, "data exception": the input, not the server (a number out of range, say),
    # whichever route let it through.
    if state.startswith("22"):
        return error_response(422, "a value is not valid text or is out of range")
    if state.startswith(_BUSY_STATES + _RACE_STATES):
        return _unavailable(request, str(error.orig), retry_after_s=RETRY_AFTER_BUSY_S)
    if state.startswith(_UNAVAILABLE_STATES) or error.connection_invalidated:
        return _unavailable(request, str(error.orig), retry_after_s=RETRY_AFTER_DOWN_S)
    log.exception("database error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


class ErrorBoundary:
    """Answers 500 to what no handler took, logged once with its traceback. Unlike Starlette's
    outermost handler it does not raise the error again, which would make the server close the
    connection: a gateway reusing it would then see a service "unavailable" that only erred."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:  # the client left mid-request: its doing, and no one to answer
            log.info("%s %s: the client left before the answer", scope["method"], scope["path"])
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], safe_text(scope["path"]))
            if started:
                raise  # half an answer is out: only closing the connection tells the client
            await error_response(500, "internal error")(scope, receive, send)


def install(app: FastAPI) -> None:
    """Answer every failure in Vitrine's error format (see the module)."""
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidCursor, invalid_cursor)
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, database_error)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    app.add_exception_handler(PoolTimeout, database_unavailable)
