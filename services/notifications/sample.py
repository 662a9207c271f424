"""An admin's test message: what a subscriber of this live will get, sent now to one address,
so a shop checks its SMTP_URL, sender and wording before the live (nothing is recorded)."""

import uuid
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.mailer import Mailer
from services.notifications import lives
from services.notifications.messages import Letter, compose
from services.notifications.models import Kind
from services.notifications.schemas import SampleReminder
from services.notifications.settings import NotificationsSettings

TEST_PREFIX = "[Test] "


async def send_test(
    *,
    session: AsyncSession,
    settings: NotificationsSettings,
    mailer: Mailer,
    stream_id: UUID,
    data: SampleReminder,
) -> bool:
    """Send it; False if the live is unknown. A mail server's refusal raises `SendFailed`."""
    live = await lives.live_row(session, stream_id)
    if live is None:
        return False
    base = settings.public_url.rstrip("/")
    letter = Letter(
        delivery_id=uuid.uuid4(),
        kind=Kind.STARTING_SOON,
        to=str(data.email),
        language=data.language,
        time_zone=data.time_zone,
        title=live.title,
        scheduled_at=live.scheduled_at,
        action_url=f"{base}/live/{stream_id}",
        unsubscribe_url=f"{base}/live/{stream_id}",  # a test has no subscription to leave
    )
    message = compose(letter, sender=settings.smtp_from, now=datetime.now(UTC))
    subject = message["Subject"]
    del message["Subject"]
    message["Subject"] = TEST_PREFIX + subject
    await mailer.send(message)
    return True
