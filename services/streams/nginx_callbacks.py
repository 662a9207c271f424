"""nginx-rtmp's callbacks (`on_publish`, `on_publish_done`, `on_record_done`) as use cases.

nginx names the stream by the key it was published with (on_publish, on_publish_done), and by the
playback id we renamed it to in the recording's callback; it sends no ids nor timestamps, so each
callback is applied as it comes, and only if it moves the live forward. Each publish is a take of
the recording (services/streams/recording), and each refusal is kept (services/streams/refusals).
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.streams import Platform, StreamStatus
from services.streams import domain, provider_events, recording, refusals
from services.streams.models import LiveStream, RetiredStreamKey
from services.streams.provider_settings import Deps, provider_of
from services.streams.providers.base import Kind, ProviderEvent
from services.streams.providers.nginx_rtmp import NginxRtmpProvider

SOURCE = "nginx-rtmp"
MAX_RECORDING_S = 7 * 24 * 3600


class PublishRefused(Exception):
    """An encoder tried to publish with a key that opens no live."""


async def on_publish(
    *,
    session: AsyncSession,
    deps: Deps,
    name: str,
    app: str | None = None,
    addr: str | None = None,
) -> str:
    """nginx asks whether `name` (a stream key) may publish to `app`; returns the playback id to
    publish under. A scheduled live goes on air; a live on air accepts its encoder reconnecting.
    Anything else is refused, and the refusal kept with its reason (services/streams/refusals)."""
    stream = await _keyed(session, name)
    reason = None
    if stream is None:
        stream = await _retired(session, name)
        reason = refusals.ROTATED_KEY if stream is not None else refusals.UNKNOWN_KEY
    elif stream.platform is not Platform.NGINX_RTMP:  # other platforms' keys open nothing
        reason = refusals.OTHER_PLATFORM
    else:
        expected = (await _provider(stream, session=session, deps=deps)).app
        if app is not None and expected is not None and app != expected:
            reason = refusals.WRONG_APP
        elif stream.status is StreamStatus.ENDED:
            reason = refusals.ENDED_LIVE
    if reason is not None:
        await refusals.refuse(
            session=session, deps=deps, name=name, reason=reason, stream=stream, app=app, addr=addr
        )
        await session.commit()
        raise PublishRefused(reason)
    assert stream is not None
    event = ProviderEvent(
        source=SOURCE, type="on_publish", kind=Kind.LIVE, state="connected", take=recording.START
    )
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
        take=recording.END,
    )
    await provider_events.apply(session=session, deps=deps, stream=stream, event=event)
    await session.commit()


async def on_record_done(
    *, session: AsyncSession, deps: Deps, name: str, path: str, duration: str | None = None
) -> None:
    """A live's recording is complete at `path`, `duration` seconds long (ffprobe's figure): it
    becomes the live's replay. The call comes from deploy/nginx-rtmp/record-done.sh once the MP4
    is whole (nginx's own FLV is ignored), after each take: an encoder that reconnects appends to
    the same file, so the duration also tells where the take that just ended stops in it."""
    stream = await _named(session, name)
    if stream is None:
        return
    provider = await _provider(stream, session=session, deps=deps)
    replay_url = provider.replay_url(path)
    event = ProviderEvent(
        source=SOURCE,
        type="on_record_done",
        kind=Kind.REPLAY_READY,
        replay_url=replay_url,
        video_s=_seconds(duration) if replay_url else None,
    )
    await provider_events.apply(session=session, deps=deps, stream=stream, event=event)
    await session.commit()


def _seconds(duration: str | None) -> float | None:
    """ffprobe's duration ("12.345000"); None for anything else ("N/A"), never an error: the
    replay must not be lost for want of its length."""
    try:
        seconds = float(duration or "")
    except ValueError:
        return None
    return round(seconds, 3) if 0 <= seconds < MAX_RECORDING_S else None


async def _named(session: AsyncSession, name: str) -> LiveStream | None:
    """The nginx-rtmp live `name` designates: its key (nginx's on_publish_done names the stream
    by the key it was published with, perhaps rotated since), or the playback id nginx renamed
    it to (on_record_done)."""
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
    stream = (await session.execute(query)).scalars().first()
    if stream is None:
        stream = await _retired(session, name)
    return stream if stream is not None and stream.platform is Platform.NGINX_RTMP else None


async def _keyed(session: AsyncSession, key: str) -> LiveStream | None:
    """The live this key opens (nginx-rtmp's first: a Restream key is shared), locked."""
    query = (
        sa.select(LiveStream)
        .where(col(LiveStream.stream_key_hash) == domain.hash_stream_key(key))
        .order_by(
            sa.case((col(LiveStream.platform) == Platform.NGINX_RTMP, 0), else_=1),
            col(LiveStream.created_at).desc(),
        )
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _retired(session: AsyncSession, key: str) -> LiveStream | None:
    """The live this key opened before it was rotated, locked."""
    query = (
        sa.select(LiveStream)
        .join(RetiredStreamKey, col(RetiredStreamKey.stream_id) == col(LiveStream.id))
        .where(col(RetiredStreamKey.key_hash) == domain.hash_stream_key(key))
        .with_for_update(of=LiveStream)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _provider(stream: LiveStream, *, session: AsyncSession, deps: Deps) -> NginxRtmpProvider:
    provider = await provider_of(stream, session=session, deps=deps)
    assert isinstance(provider, NginxRtmpProvider)
    return provider
