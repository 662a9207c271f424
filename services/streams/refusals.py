"""Publishes nginx-rtmp is told to refuse, kept so that the admin can tell why a live does not
start (the guide's « Le stream ne démarre pas »): logged with the reason, shown on the live whose
key it was (its current or a rotated one) and, whatever the key, in the platform's settings.

A key is secret: only its last 4 characters are ever logged or kept, as « …1234 ».
"""

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.streams import Platform
from services.streams import provider_events
from services.streams.models import LiveStream, RefusedPublish, RefusedPublishView
from services.streams.provider_settings import Deps

log = logging.getLogger(__name__)

UNKNOWN_KEY = "unknown key"
ROTATED_KEY = "rotated key"
ENDED_LIVE = "ended live"
WRONG_APP = "wrong app"
OTHER_PLATFORM = "key of a live on another platform"
REFUSED = "refused"  # the provider state of a live whose encoder is turned away
KEEP = 100  # refused publishes kept for the settings' answer, newest first
SHOWN_CHARACTERS = 4
_PRINTABLE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/")


def key_tail(name: str) -> str:
    """What may be shown of a key: its last 4 characters, when that leaves most of it unsaid."""
    if len(name) < 3 * SHOWN_CHARACTERS:
        return ""
    return _printable(name[-SHOWN_CHARACTERS:])


def _printable(text: str | None, limit: int = 64) -> str:
    """Text from an encoder as it may go into a log line: no control characters, bounded."""
    return "".join(c if c in _PRINTABLE else "?" for c in (text or "")[:limit])


def _now() -> datetime:
    return datetime.now(UTC)


async def refuse(
    *,
    session: AsyncSession,
    deps: Deps,
    name: str,
    reason: str,
    stream: LiveStream | None = None,
    app: str | None = None,
    addr: str | None = None,
) -> None:
    """Keep the refused publish (the live's row is locked by the caller); commit is the
    caller's."""
    at, tail = _now(), key_tail(name)
    app = _printable(app) if app else None
    log.warning(
        "nginx-rtmp publish refused: %s (key …%s, app %s, from %s%s)",
        reason,
        tail,
        app or "?",
        _printable(addr) or "?",
        f", live {stream.id}" if stream is not None else "",
    )
    entry = RefusedPublish(
        refused_at=at,
        stream_id=stream.id if stream is not None else None,
        key_tail=tail,
        reason=reason,
        app=app,
    )
    session.add(entry)
    await session.flush()
    assert entry.id is not None
    await session.execute(
        sa.delete(RefusedPublish).where(col(RefusedPublish.id) <= entry.id - KEEP)
    )
    if stream is None:
        return
    stream.last_refused_publish = _view(entry).model_dump(mode="json")
    stream.last_webhook = {
        "source": "nginx-rtmp",
        "type": "on_publish",
        "id": None,
        "received_at": at.isoformat(),
        "outcome": REFUSED,
    }
    stream.updated_at = at
    # An encoder on air with the right key keeps its state, and a live of another platform
    # its provider's; otherwise the admin sees why nothing comes.
    if stream.platform is Platform.NGINX_RTMP and stream.provider_state != "connected":
        await provider_events.show_state(
            session=session, deps=deps, stream=stream, state=REFUSED, detail=reason, at=at
        )


async def last_refused(session: AsyncSession) -> RefusedPublishView | None:
    """The last publish refused, whatever the key."""
    query = sa.select(RefusedPublish).order_by(col(RefusedPublish.id).desc()).limit(1)
    entry = (await session.execute(query)).scalar_one_or_none()
    return _view(entry) if entry is not None else None


def _view(entry: RefusedPublish) -> RefusedPublishView:
    return RefusedPublishView(
        at=entry.refused_at, key=f"…{entry.key_tail}", reason=entry.reason, app=entry.app
    )


def view_of(stored: dict[str, Any] | None) -> RefusedPublishView | None:
    """The live's last refused publish, as kept on its row."""
    return RefusedPublishView.model_validate(stored) if stored else None
