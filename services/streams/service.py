"""Use cases of the streams service: keyword-only async functions over a session and the outbox.

Each one changes rows and records the matching event in the same transaction, then commits.
"""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.secrets import SecretBox
from contracts.streams import (
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamStatus,
    StreamUpdated,
    StreamView,
)
from services.streams import domain
from services.streams.models import LiveStream, RetiredStreamKey, StreamCreate, StreamUpdate
from services.streams.provider_settings import Deps, configured_provider, provider_of

PUBLIC_STATUSES = (StreamStatus.SCHEDULED, StreamStatus.LIVE)


class StreamNotFound(Exception):
    """No such live (or not one the caller may see)."""


def stream_view(stream: LiveStream) -> StreamView:
    """The public face of a live, as events and non-admins see it."""
    return StreamView.model_validate(stream, from_attributes=True)


def _now() -> datetime:
    return datetime.now(UTC)


# --- lives ---------------------------------------------------------------------------------------


async def create_stream(*, session: AsyncSession, deps: Deps, data: StreamCreate) -> LiveStream:
    """Schedule a live on the configured platform with a fresh stream key."""
    domain.check_schedule(data.scheduled_at, now=_now())
    provider = await configured_provider(session=session, deps=deps)
    stream_id, playback_id = uuid4(), domain.new_playback_id()
    ingest = await provider.create(
        stream_id=stream_id, stream_key=domain.new_stream_key(), playback_id=playback_id
    )
    stream = LiveStream(
        id=stream_id,
        title=data.title,
        description=data.description,
        scheduled_at=data.scheduled_at,
        status=StreamStatus.SCHEDULED,
        platform=provider.platform,
        stream_key_hash=domain.hash_stream_key(ingest.stream_key),
        stream_key_sealed=deps.box.seal(ingest.stream_key),
        playback_id=playback_id,
        ingest_url=ingest.ingest_url,
        playback_url=ingest.playback_url,
        provider_ref=ingest.provider_ref,
    )
    session.add(stream)
    await session.flush()
    await deps.outbox.record(
        session, StreamCreated(stream=stream_view(stream)), stream_id=stream.id
    )
    await session.commit()
    return stream


async def get_stream(*, session: AsyncSession, stream_id: UUID, include_ended: bool) -> LiveStream:
    stream = await session.get(LiveStream, stream_id)
    if stream is None or (not include_ended and stream.status not in PUBLIC_STATUSES):
        raise StreamNotFound(stream_id)
    return stream


async def get_replay(*, session: AsyncSession, stream_id: UUID, admin: bool) -> LiveStream:
    """A live whose replay may be watched: ended with a recording (admins: once it has one)."""
    stream = await session.get(LiveStream, stream_id)
    if (
        stream is None
        or stream.replay_url is None
        or (not admin and stream.status is not StreamStatus.ENDED)
    ):
        raise StreamNotFound(stream_id)
    return stream


async def update_stream(
    *, session: AsyncSession, deps: Deps, stream_id: UUID, data: StreamUpdate
) -> LiveStream:
    """Change the fields sent; records `stream.updated` only if something really changed."""
    stream = await locked(session, stream_id)
    if "scheduled_at" in data.model_fields_set and data.scheduled_at != stream.scheduled_at:
        domain.check_schedule(data.scheduled_at, now=_now())  # sent back unchanged: fine
    changed = []
    for field in sorted(data.model_fields_set):
        value = getattr(data, field)
        if getattr(stream, field) != value:
            setattr(stream, field, value)
            changed.append(field)
    if changed:
        stream.updated_at = _now()
        await deps.outbox.record(
            session, StreamUpdated(stream=stream_view(stream), changed=changed), stream_id=stream.id
        )
    await session.commit()
    return stream


async def delete_stream(*, session: AsyncSession, deps: Deps, stream_id: UUID) -> None:
    """Delete a live that is not on air (InvalidTransition otherwise)."""
    stream = await locked(session, stream_id)
    domain.ensure_deletable(stream.status)
    provider = await provider_of(stream, session=session, deps=deps)
    await provider.delete(stream_id=stream.id, provider_ref=stream.provider_ref)
    await session.execute(
        sa.delete(RetiredStreamKey).where(col(RetiredStreamKey.stream_id) == stream.id)
    )
    await session.delete(stream)
    await deps.outbox.record(session, StreamDeleted(stream_id=stream.id), stream_id=stream.id)
    await session.commit()


async def start_stream(*, session: AsyncSession, deps: Deps, stream_id: UUID) -> LiveStream:
    stream = await locked(session, stream_id)
    await go_live(session=session, deps=deps, stream=stream)
    await session.commit()
    return stream


async def rotate_key(*, session: AsyncSession, deps: Deps, stream_id: UUID) -> LiveStream:
    """Replace the stream key; the old one opens nothing any more."""
    stream = await locked(session, stream_id)
    domain.ensure_key_rotatable(stream.status)
    provider = await provider_of(stream, session=session, deps=deps)
    key = await provider.rotate_key(
        stream_id=stream.id, provider_ref=stream.provider_ref, stream_key=domain.new_stream_key()
    )
    if domain.hash_stream_key(key) != stream.stream_key_hash:
        # Kept so that an encoder still publishing with it is told why it is refused.
        retired = {"key_hash": stream.stream_key_hash, "stream_id": stream.id, "retired_at": _now()}
        await session.execute(
            insert(RetiredStreamKey)
            .values(**retired)
            .on_conflict_do_update(index_elements=["key_hash"], set_=retired)
        )
    stream.stream_key_hash = domain.hash_stream_key(key)
    stream.stream_key_sealed = deps.box.seal(key)
    stream.updated_at = _now()
    # The event says that the key changed, never what it is.
    await deps.outbox.record(
        session,
        StreamUpdated(stream=stream_view(stream), changed=["stream_key"]),
        stream_id=stream.id,
    )
    await session.commit()
    return stream


def stream_key(stream: LiveStream, *, box: SecretBox) -> str:
    return box.open(stream.stream_key_sealed)


async def go_live(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, at: datetime | None = None
) -> None:
    """A scheduled live goes on air (InvalidTransition otherwise), now or `at`; commit is the
    caller's."""
    stream.status = domain.start(stream.status)
    stream.started_at = stream.updated_at = at or _now()
    await deps.outbox.record(
        session, StreamStarted(stream=stream_view(stream)), stream_id=stream.id
    )


async def go_off_air(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, at: datetime | None = None
) -> None:
    """A live on air ends for good (InvalidTransition otherwise), now or `at`; commit is the
    caller's."""
    stream.status = domain.end(stream.status)
    stream.end_deadline = None
    stream.ended_at = stream.updated_at = at or _now()
    await deps.outbox.record(session, StreamEnded(stream=stream_view(stream)), stream_id=stream.id)


async def locked(session: AsyncSession, stream_id: UUID) -> LiveStream:
    """The live's row, locked until commit so that concurrent transitions queue up."""
    query = (
        sa.select(LiveStream)
        .where(col(LiveStream.id) == stream_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    stream = (await session.execute(query)).scalar_one_or_none()
    if stream is None:
        raise StreamNotFound(stream_id)
    return stream
