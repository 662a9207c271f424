"""nginx-rtmp's callbacks (`on_publish`, `on_publish_done`, `on_record_done`) as use cases.

nginx names the stream by the key when it asks to publish, and by the playback id we renamed it
to afterwards; it sends no ids nor timestamps, so each callback is applied as it comes, and only
if it moves the live forward.
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.streams import Platform, StreamStatus
from services.streams import domain, provider_events
from services.streams.models import LiveStream
from services.streams.provider_settings import Deps, provider_of
from services.streams.providers.base import Kind, ProviderEvent
from services.streams.providers.nginx_rtmp import NginxRtmpProvider

SOURCE = "nginx-rtmp"


class PublishRefused(Exception):
    """An encoder tried to publish with a key that opens no live."""


async def on_publish(*, session: AsyncSession, deps: Deps, name: str) -> str:
    """nginx asks whether `name` (a stream key) may publish; returns the playback id to publish
    under. A scheduled live goes on air; a live on air accepts its encoder reconnecting."""
    query = (
        sa.select(LiveStream)
        .where(
            col(LiveStream.stream_key_hash) == domain.hash_stream_key(name),
            col(LiveStream.platform) == Platform.NGINX_RTMP,  # other platforms' keys open nothing
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    stream = (await session.execute(query)).scalar_one_or_none()
    if stream is None or stream.status is StreamStatus.ENDED:
        raise PublishRefused
    event = ProviderEvent(source=SOURCE, type="on_publish", kind=Kind.LIVE, state="connected")
    await provider_events.apply(session=session, deps=deps, stream=stream, event=event)
    await session.commit()
    return stream.playback_id


async def on_publish_done(*, session: AsyncSession, deps: Deps, name: str) -> None:
    """The encoder stopped: the live ends unless it publishes again within the reconnect grace.
    Late or repeated calls change nothing."""
    stream = await _named(session, name)
    if stream is None:
        return
    provider = await _provider(stream, session=session, deps=deps)
    event = ProviderEvent(
        source=SOURCE,
        type="on_publish_done",
        kind=Kind.DISCONNECTED,
        grace_s=provider.reconnect_grace_s,
    )
    await provider_events.apply(session=session, deps=deps, stream=stream, event=event)
    await session.commit()


async def on_record_done(*, session: AsyncSession, deps: Deps, name: str, path: str) -> None:
    """A live's recording is complete at `path`: it becomes the live's replay. The call comes
    from deploy/nginx-rtmp/record-done.sh once the MP4 is whole (nginx's own FLV is ignored)."""
    stream = await _named(session, name)
    if stream is None:
        return
    provider = await _provider(stream, session=session, deps=deps)
    event = ProviderEvent(
        source=SOURCE,
        type="on_record_done",
        kind=Kind.REPLAY_READY,
        replay_url=provider.replay_url(path),
    )
    await provider_events.apply(session=session, deps=deps, stream=stream, event=event)
    await session.commit()


async def _named(session: AsyncSession, name: str) -> LiveStream | None:
    """The nginx-rtmp live `name` designates: its key, or the playback id nginx renamed it to."""
    query = (
        sa.select(LiveStream)
        .where(
            sa.or_(
                col(LiveStream.stream_key_hash) == domain.hash_stream_key(name),
                col(LiveStream.playback_id) == name,
            ),
            col(LiveStream.platform) == Platform.NGINX_RTMP,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().first()


async def _provider(stream: LiveStream, *, session: AsyncSession, deps: Deps) -> NginxRtmpProvider:
    provider = await provider_of(stream, session=session, deps=deps)
    assert isinstance(provider, NginxRtmpProvider)
    return provider
