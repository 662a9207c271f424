"""Webhooks of hosted providers (Mux, AWS IVS): find the live, handle each webhook id once."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.streams import Platform
from services.streams import provider_events
from services.streams.models import LiveStream
from services.streams.provider_settings import Deps
from services.streams.providers.base import ProviderEvent


async def handle(
    *,
    session: AsyncSession,
    deps: Deps,
    platform: Platform,
    provider_ref: str | None,
    event: ProviderEvent,
) -> str:
    """Apply a verified webhook about the live `provider_ref` names; returns the outcome
    (applied, ignored, duplicate). Unknown lives are ignored: providers serve other apps too."""
    stream = None
    if provider_ref:
        query = (
            sa.select(LiveStream)
            .where(
                col(LiveStream.platform) == platform,
                col(LiveStream.provider_ref) == provider_ref,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        stream = (await session.execute(query)).scalars().first()
    if not await provider_events.first_time(session=session, event=event, stream=stream):
        await session.rollback()
        return provider_events.DUPLICATE
    outcome = provider_events.IGNORED
    if stream is not None:
        outcome = await provider_events.apply(
            session=session, deps=deps, stream=stream, event=event
        )
    await session.commit()
    return outcome
