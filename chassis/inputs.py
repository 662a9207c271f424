"""What a client may send as text, checked once for every service before any route runs.

A lone UTF-16 surrogate (`"\\ud800"` in JSON) is not text: no database stores it, no JSON encoder
writes it back. Control characters (Unicode category Cc: C0, DEL, C1) are never part of a name,
an id or a search; inside a JSON string value, which may be free text (a description, a chat
message), tab, newline and carriage return stay allowed. So, per place:

- JSON string values: no surrogate, no control character but `\\t`, `\\n`, `\\r`;
- JSON object keys, query parameters: no surrogate, no control character at all;
- the path: a control character names no resource (404).

Refusals are 422 `{"detail": [{"type", "loc", "msg"}]}` in FastAPI's shape, `loc` naming the
field (`["body", "products", 0, "name"]`, `["query", "session_id"]`), before authentication and
validation, so no route, validator or error handler ever sees such a string.
"""

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_ERRORS = 10
# Unicode's Cc category is exactly C0 (U+0000-001F), DEL and C1 (U+007F-009F); Cs, the surrogates.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REFUSED_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Bodies without any of these bytes hold no refused character once decoded, and skip parsing:
# an escape (`\u…`, `\b`, `\f`), DEL, a C1 control or a surrogate as raw (invalid) UTF-8.
_MAYBE_REFUSED = re.compile(rb"\\[ubf]|\x7f|\xc2[\x80-\x9f]|\xed[\xa0-\xbf]")
_JSON_SUBTYPE = re.compile(r"^application/([\w.+-]*\+)?json\b")
Loc = tuple[str | int, ...]


def refused(char: str, *, multiline: bool) -> bool:
    """Whether `char` may not appear in text (`multiline`: tab and line breaks may)."""
    return first_refused(char, multiline=multiline) is not None


def first_refused(text: str, *, multiline: bool) -> str | None:
    """The first character of `text` that may not appear in it, if any."""
    found = (_REFUSED_IN_TEXT if multiline else _REFUSED).search(text)
    return found[0] if found else None


def describe(char: str) -> str:
    """A refused character, as a message says it (never the character itself)."""
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"a lone UTF-16 surrogate (U+{ord(char):04X}) is not text"
    return f"the control character U+{ord(char):04X} is not allowed here"


def _error(loc: Loc, char: str) -> dict[str, Any]:
    return {"type": "string_invalid_character", "loc": list(loc), "msg": describe(char)}


def json_errors(value: Any, loc: Loc = ("body",)) -> Iterator[dict[str, Any]]:
    """Every refused character in a decoded JSON document, one error per string holding any,
    in document order. Iterative: a deeply nested document is no reason for a 500."""
    pending: list[tuple[Loc, Any]] = [(loc, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            if (char := first_refused(item, multiline=True)) is not None:
                yield _error(where, char)
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                if (char := first_refused(key, multiline=False)) is not None:
                    pending.append(((*where, safe_text(key)), _BadKey(char)))
                else:
                    pending.append(((*where, key), inner))
        elif isinstance(item, list):
            pending.extend(
                ((*where, index), inner) for index, inner in reversed(list(enumerate(item)))
            )
        elif isinstance(item, _BadKey):
            yield _error(where, item.char)


class _BadKey:
    """A key holding a refused character, in its place in the document's order."""

    def __init__(self, char: str) -> None:
        self.char = char


def query_errors(query_string: bytes) -> Iterator[dict[str, Any]]:
    """Refused characters in query parameters, decoded as Starlette decodes them."""
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if (char := first_refused(key + value, multiline=False)) is not None:
            yield _error(("query", safe_text(key)), char)


def safe_text(text: str) -> str:
    """`text` with each surrogate and control character written as its escape (`\\ud800`), so
    it can be logged or sent back as JSON."""
    if first_refused(text, multiline=False) is None:
        return text
    return "".join(
        f"\\u{ord(char):04x}" if refused(char, multiline=False) else char for char in text
    )


def _json_body(headers: dict[bytes, bytes]) -> bool:
    """Whether FastAPI (or a route reading the body itself) would read this body as JSON."""
    content_type = headers.get(b"content-type")
    if content_type is None:
        return True
    return bool(_JSON_SUBTYPE.match(content_type.decode("latin-1").strip().lower()))


class InputGuard:
    """Refuses, before any route runs, the request text no service accepts (see the module).

    `exempt_body_prefixes`: paths whose bodies are checked by their own routes (signed webhooks:
    the sender's data is stored as sent, a shop's note with a stray control character included).
    """

    def __init__(self, app: ASGIApp, *, exempt_body_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt_body_prefixes = exempt_body_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if first_refused(path, multiline=False) is not None:
            log.info(
                "%s %s: a control character in the path, answered 404",
                scope["method"],
                safe_text(path)[:200],
            )
            await _answer(send, 404, {"detail": "Not Found"})
            return
        errors = list(query_errors(scope.get("query_string", b"")))
        headers = dict(scope["headers"])
        if (
            scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and _json_body(headers)
            and not path.startswith(self.exempt_body_prefixes)
        ):
            body, disconnected = await _read_body(receive)
            if disconnected:
                return  # the client left before its body was whole: no one to answer
            errors += _body_errors(body)
            receive = _replay(body, receive)
        if errors:
            await _answer(send, 422, {"detail": errors[:MAX_ERRORS]})
            return
        await self.app(scope, receive, send)


def _body_errors(body: bytes) -> list[dict[str, Any]]:
    if not _MAYBE_REFUSED.search(body):
        return []
    try:
        document = json.loads(body)  # as FastAPI decodes it: surrogates come through as they are
    except (ValueError, RecursionError):
        return []  # not JSON (or nested past what anything parses): the route answers that
    return list(json_errors(document))


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether the client went away while sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then whatever the client does next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, content: Any) -> None:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
