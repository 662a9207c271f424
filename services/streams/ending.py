"""The admin ends a live: off air at once, then its encoder disconnected by the provider
(nginx-rtmp's drop/publisher, Mux's complete + disable, IVS's stop_stream), so the picture and the
recording end with it instead of running on until the encoder gives up."""

import asyncio
import logging
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.streams import Platform
from services.streams import provider_events
from services.streams.models import LiveStream
from services.streams.provider_settings import Deps, provider_of
from services.streams.providers.base import (
    EncoderStop,
    InvalidProviderConfig,
    ProviderUnavailable,
)
from services.streams.service import go_off_air, locked

log = logging.getLogger(__name__)

# Ending a live waits this long at most for the provider to stop the encoder.
ENCODER_STOP_TIMEOUT_S = 6.0
STOP_FAILED = "stop_failed"


async def end_stream(*, session: AsyncSession, deps: Deps, stream_id: UUID) -> LiveStream:
    """The admin ends the live: it is off air at once (committed), then its encoder is told to
    stop, so the picture and the recording end with it. A provider failing to stop it does not
    undo the end: it is logged, and the provider state says so."""
    stream = await locked(session, stream_id)
    await go_off_air(session=session, deps=deps, stream=stream)
    await session.commit()
    return await stop_encoder(session=session, deps=deps, stream=stream)


async def stop_encoder(*, session: AsyncSession, deps: Deps, stream: LiveStream) -> LiveStream:
    """Ask the live's provider to disconnect its encoder and record what came of it."""
    if stream.platform is Platform.NGINX_RTMP and stream.provider_state != "connected":
        return stream  # nginx asks before any publish: none is going on
    try:
        provider = await provider_of(stream, session=session, deps=deps)
        stop = await asyncio.wait_for(
            provider.stop_encoder(
                stream_id=stream.id,
                provider_ref=stream.provider_ref,
                playback_id=stream.playback_id,
            ),
            ENCODER_STOP_TIMEOUT_S,
        )
    except Exception as error:  # whatever the provider did, the live has ended
        expected = isinstance(error, ProviderUnavailable | InvalidProviderConfig)
        reason = str(error) if expected else type(error).__name__
        if isinstance(error, TimeoutError):
            reason = f"no answer within {ENCODER_STOP_TIMEOUT_S:g} s"
        log.warning(
            "live %s ended, but its encoder was not stopped: %s",
            stream.id,
            reason,
            exc_info=not expected and not isinstance(error, TimeoutError),
        )
        stop = EncoderStop(stopped=False, detail=f"encoder not stopped: {reason}")
        state = STOP_FAILED
    else:
        if stop is None:
            return stream  # the platform cannot: the admin stops OBS
        log.info("live %s ended: %s", stream.id, stop.detail)
        state = "disconnected"  # dropped now, or nothing was publishing: no encoder is on
    await session.commit()  # a fresh transaction: provider callbacks may have come meanwhile
    stream = await locked(session, stream.id)
    await provider_events.show_state(
        session=session, deps=deps, stream=stream, state=state, detail=stop.detail
    )
    await session.commit()
    return stream
