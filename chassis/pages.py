"""One shape for every list: `{"items": […], "next_cursor": "…" | null}`, asked for with
`?cursor=<next_cursor>&limit=`. A cursor is an opaque position (the last item's sort key), so an
item added meanwhile never shifts a page: none is lost or repeated. A cursor this service did not
hand out is a 400 (chassis.errors)."""

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, Field

CURSOR_MAX = 400

Cursor = Annotated[
    str | None,
    Query(max_length=CURSOR_MAX, description="the previous page's `next_cursor`; none: the first"),
]


PAGE_MAX = 100
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="items per page")]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; `next_cursor` asks for the next one (null: this is the last)."""

    items: list[T]
    next_cursor: str | None = Field(description="pass as `?cursor=` for the next page")


class InvalidCursor(ValueError):
    """A cursor this service did not hand out."""

    def __init__(self) -> None:
        super().__init__("invalid cursor")


def encode_cursor(*position: str | int | float | datetime | UUID) -> str:
    """An opaque cursor for the position after an item whose sort key is `position`."""
    parts = [
        p.isoformat() if isinstance(p, datetime) else str(p) if isinstance(p, UUID) else p
        for p in position
    ]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> list[Any]:
    """The position `encode_cursor` was given, each part checked to be of its kind (str, int,
    float, an aware datetime or a UUID)."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor from None
    if not isinstance(position, list) or len(position) != len(kinds):
        raise InvalidCursor
    return [_part(part, kind) for part, kind in zip(position, kinds, strict=True)]


def _part(part: Any, kind: type) -> Any:
    if kind is UUID and isinstance(part, str):
        try:
            return UUID(part)
        except ValueError:
            raise InvalidCursor from None
    if kind is datetime and isinstance(part, str):
        try:
            moment = datetime.fromisoformat(part)
        except ValueError:
            raise InvalidCursor from None
        if moment.tzinfo is None:
            raise InvalidCursor
        return moment
    if type(part) is not kind:  # not isinstance: True is not an int here
        raise InvalidCursor
    return part
