"""From a claimed delivery row (the delivery, its subscription and its live) to what is sent,
and the rules of whether it still holds and for how long."""

from datetime import datetime

import sqlalchemy as sa

from services.notifications.messages import Letter
from services.notifications.models import Kind
from services.notifications.tokens import Purpose, Signer


def letter_for(row: sa.Row, *, public_url: str, signer: Signer) -> Letter:
    """The message a claimed delivery row stands for, its links signed."""
    base = public_url.rstrip("/")
    unsubscribe = signer.sign(Purpose.UNSUBSCRIBE, row.subscription_id)
    if row.kind == Kind.CONFIRM.value:
        confirm = signer.sign(Purpose.CONFIRM, row.subscription_id)
        action = f"{base}/api/live/reminders/confirm?token={confirm}"
    else:
        action = f"{base}/live/{row.stream_id}"
    return Letter(
        delivery_id=row.id,
        kind=Kind(row.kind),
        to=row.email or "",
        language=row.language,
        time_zone=row.time_zone,
        title=row.title or "",
        scheduled_at=row.scheduled_at,
        action_url=action,
        unsubscribe_url=f"{base}/api/live/reminders/unsubscribe?token={unsubscribe}",
    )


def push_ttl_s(row: sa.Row, now: datetime) -> int:
    """How long a push service may hold the message for an offline browser: no longer than
    it stays true ("starts in 15 min" is stale once the live has started)."""
    if row.kind == Kind.STARTING_SOON.value and row.scheduled_at is not None:
        return max(60, int((row.scheduled_at - now).total_seconds()))
    return 3600 if row.kind == Kind.LIVE.value else 86400


def still_true(row: sa.Row, now: datetime) -> bool:
    """Whether the message still says something true now that its time has come."""
    if row.kind == Kind.CONFIRM.value:
        return row.confirmed_at is None
    if row.confirmed_at is None:
        return False
    if row.kind == Kind.STARTING_SOON.value:
        return row.live_status == "scheduled" and (row.scheduled_at or now) > now
    if row.kind == Kind.LIVE.value:
        return row.live_status == "live"
    return bool(row.replay_ready) and row.live_status == "ended"
