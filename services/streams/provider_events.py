"""What video providers report about a live (nginx callbacks, Mux and IVS webhooks), applied once
and only when it moves the live forward.

Providers retry, duplicate, delay and reorder their webhooks. So each report is turned into one
`ProviderEvent` by its provider module, then here: a webhook id seen before changes nothing, a
report older than the last one applied leaves the provider state alone, and the live's status only
ever moves `scheduled → live → ended`.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.streams import StreamProviderStateChanged, StreamStatus, StreamUpdated
from services.streams import recording, service
from services.streams.models import LiveStream, ProviderWebhook
from services.streams.provider_settings import Deps
from services.streams.providers.base import Kind, ProviderEvent

APPLIED, IGNORED, DUPLICATE = "applied", "ignored", "duplicate"


def _now() -> datetime:
    return datetime.now(UTC)


async def first_time(
    session: AsyncSession, event: ProviderEvent, stream: LiveStream | None
) -> bool:
    """Records the webhook's id; False if it was handled before (the caller changes nothing)."""
    if event.id is None:
        return True
    inserted = await session.execute(
        insert(ProviderWebhook)
        .values(
            source=event.source,
            webhook_id=event.id,
            stream_id=stream.id if stream else None,
            type=event.type[:100],
            outcome=APPLIED,
            received_at=_now(),
        )
        .on_conflict_do_nothing()
        .returning(col(ProviderWebhook.webhook_id))
    )
    return inserted.first() is not None


async def apply(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, event: ProviderEvent
) -> str:
    """Apply a report to a locked live; returns the outcome (applied / ignored). Commit is the
    caller's."""
    changed = await _apply(session=session, deps=deps, stream=stream, event=event)
    outcome = APPLIED if changed else IGNORED
    stream.last_webhook = {
        "source": event.source,
        "type": event.type,
        "id": event.id,
        "received_at": _now().isoformat(),
        "outcome": outcome,
    }
    if event.id is not None:
        await session.execute(
            sa.update(ProviderWebhook)
            .where(
                col(ProviderWebhook.source) == event.source,
                col(ProviderWebhook.webhook_id) == event.id,
            )
            .values(outcome=outcome, stream_id=stream.id)
        )
    return outcome


async def _apply(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, event: ProviderEvent
) -> bool:
    # A report without a time of its own (nginx's) happened now: the live starts or ends at the
    # very moment its take does.
    arrived = _now()
    at = event.occurred_at or arrived
    recorded = _record(stream, event, at=at)
    if event.kind is Kind.REPLAY_READY:
        return await _replay_ready(session=session, deps=deps, stream=stream, event=event) or (
            recorded
        )
    if stream.status is StreamStatus.ENDED:
        return recorded  # an ended live stays ended: whatever comes now is late
    if event.kind is Kind.OTHER and event.state is None:
        return recorded  # nothing to show either
    if stream.provider_state_at is not None and at < stream.provider_state_at:
        return recorded  # older than what we know
    changed = await _state(session=session, deps=deps, stream=stream, event=event, at=at)
    if event.kind in (Kind.CONNECTED, Kind.LIVE) and stream.end_deadline is not None:
        stream.end_deadline = None  # the encoder came back within the grace
        changed = True
    if event.kind is Kind.LIVE and stream.status is StreamStatus.SCHEDULED:
        await service.go_live(session=session, deps=deps, stream=stream, at=arrived)
        changed = True
    elif event.kind is Kind.DISCONNECTED and stream.status is StreamStatus.LIVE:
        if event.grace_s == 0:
            await service.go_off_air(session=session, deps=deps, stream=stream, at=arrived)
            changed = True
        elif event.grace_s is not None and stream.end_deadline is None:
            stream.end_deadline = arrived + timedelta(seconds=event.grace_s)
            changed = True
    elif event.kind is Kind.ENDED and stream.status is StreamStatus.LIVE:
        await service.go_off_air(session=session, deps=deps, stream=stream, at=arrived)
        changed = True
    return changed or recorded


def _record(stream: LiveStream, event: ProviderEvent, *, at: datetime) -> bool:
    """What the report says of the recording, kept whatever the live's status (a take's end and
    the file's length come after the live ended); True if that changed the takes or length."""
    before = stream.recording
    updated = event.recording if event.recording is not None else before
    if event.take == recording.START:
        updated = recording.take_started(updated, at)
    elif event.take == recording.END:
        updated = recording.take_ended(updated, at)
    if event.video_s is not None:
        updated = recording.file_measured(updated, at, event.video_s)
    elif event.duration_s is not None:
        updated = recording.file_lasts(updated, event.duration_s)
    if updated is None or _layout(updated) == _layout(before):
        return False  # a repeated report: nothing stored, the row stays small
    stream.recording = updated
    return True


def _layout(recorded: recording.Recording | None) -> tuple[object, object]:
    return recording.takes(recorded), (recorded or {}).get("duration_s")


async def _state(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, event: ProviderEvent, at: datetime
) -> bool:
    return await show_state(
        session=session,
        deps=deps,
        stream=stream,
        state=event.state or event.kind.value,
        detail=event.type,
        at=at,
    )


async def show_state(
    *,
    session: AsyncSession,
    deps: Deps,
    stream: LiveStream,
    state: str,
    detail: str | None,
    at: datetime | None = None,
) -> bool:
    """The provider state the admin sees (and `stream.provider_state` says), as of `at`; True
    if it changed. Commit is the caller's."""
    stream.provider_state_at = at or _now()
    if stream.provider_state == state:
        return False
    stream.provider_state = state
    stream.updated_at = _now()
    await deps.outbox.record(
        session,
        StreamProviderStateChanged(platform=stream.platform, state=state, detail=detail),
        stream_id=stream.id,
    )
    return True


async def _replay_ready(
    *, session: AsyncSession, deps: Deps, stream: LiveStream, event: ProviderEvent
) -> bool:
    if not event.replay_url or stream.replay_url == event.replay_url:
        return False
    stream.replay_url = event.replay_url
    stream.updated_at = _now()
    await deps.outbox.record(
        session,
        StreamUpdated(stream=service.stream_view(stream), changed=["replay_url"]),
        stream_id=stream.id,
    )
    await deps.outbox.record(
        session,
        StreamProviderStateChanged(
            platform=stream.platform, state="recording_ready", detail=event.type
        ),
        stream_id=stream.id,
    )
    return True


async def end_abandoned_lives(*, session: AsyncSession, deps: Deps, limit: int = 100) -> int:
    """End the lives whose encoder left and did not come back within the grace. Safe to run in
    every replica at once (rows locked, others skipped)."""
    query = (
        sa.select(LiveStream)
        .where(
            col(LiveStream.status) == StreamStatus.LIVE,
            col(LiveStream.end_deadline) <= _now(),
        )
        .with_for_update(skip_locked=True)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    ended = 0
    for stream in (await session.execute(query)).scalars():
        await service.go_off_air(session=session, deps=deps, stream=stream)
        ended += 1
    await session.commit()
    return ended
