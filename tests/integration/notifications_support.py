"""What the notifications tests share: the service on a real SMTP catcher, lives announced on
the run's JetStream as the streams service would, and reading links out of the messages."""

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import httpx
from nats.js import JetStreamContext
from pydantic import BaseModel

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from contracts import new_envelope
from contracts.streams import (
    Platform,
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamStatus,
    StreamUpdated,
    StreamView,
)
from services.notifications.app import create_app, migrate
from services.notifications.settings import NotificationsSettings
from tests.conftest import auth, eventually
from tests.support.services import serving
from vitrine.mailcatcher import MailCatcher

PUBLIC = "https://shop.example"
LEAD = timedelta(minutes=15)


def settings_for(env: dict, smtp: MailCatcher, **extra: Any) -> NotificationsSettings:
    quick = {"dispatch_interval_s": 0.1, "send_retry_base_s": 0.2}
    return NotificationsSettings(
        **env,
        smtp_url=smtp.url,
        public_url=PUBLIC,
        db_pool_size=2,
        db_max_overflow=2,
        **{**quick, **extra},
    )


@contextlib.asynccontextmanager
async def running(settings: NotificationsSettings) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(settings)
    async with serving(create_app(settings), "notifications") as client:
        yield client


class Live:
    """One live, its events published as the streams service's relay would."""

    def __init__(self, js: JetStreamContext, env: dict, title: str = "Spring collection") -> None:
        self.js, self.env = js, env
        self.id: UUID = uuid4()
        self.title = title
        self.created_at = datetime.now(UTC)
        self.scheduled_at: datetime | None = None
        self.announced = False

    def view(self, status: StreamStatus, **changes: Any) -> StreamView:
        return StreamView(
            id=self.id, title=self.title, status=status, platform=Platform.NGINX_RTMP,
            scheduled_at=self.scheduled_at, created_at=self.created_at,
            updated_at=datetime.now(UTC), **changes,
        )  # fmt: skip

    async def publish(self, payload: BaseModel) -> None:
        envelope = new_envelope(payload, stream_id=self.id, producer="streams")
        await self.js.publish(
            f"{self.env['subject_root']}.{self.id}.{envelope.type}",
            envelope.model_dump_json().encode(),
            stream=self.env["jetstream_stream"],
            headers={"Nats-Msg-Id": str(envelope.id)},
        )

    async def schedule(self, at: datetime | None) -> None:
        self.scheduled_at = at
        view = self.view(StreamStatus.SCHEDULED)
        if not self.announced:
            self.announced = True
            await self.publish(StreamCreated(stream=view))
        else:
            await self.publish(StreamUpdated(stream=view, changed=["scheduled_at"]))

    async def publish_title_change(self, title: str) -> None:
        self.title = title
        view = self.view(StreamStatus.SCHEDULED)
        await self.publish(StreamUpdated(stream=view, changed=["title"]))

    async def start(self) -> None:
        await self.publish(StreamStarted(stream=self.view(StreamStatus.LIVE)))

    async def end(self, *, replay: bool = True) -> None:
        url = f"https://video.example/{self.id}.mp4" if replay else None
        await self.publish(StreamEnded(stream=self.view(StreamStatus.ENDED, replay_url=url)))

    async def delete(self) -> None:
        await self.publish(StreamDeleted(stream_id=self.id))


async def known(client: httpx.AsyncClient, live: Live, admin: dict[str, str]) -> None:
    """Until the service has heard of the live."""

    async def heard() -> bool:
        answer = await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)
        return answer.status_code == 200

    await eventually(heard)


async def scheduled_live(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, *, in_: timedelta
) -> Live:
    live = Live(js, env)
    await live.schedule(datetime.now(UTC) + in_)
    await known(client, live, admin)
    return live


def address() -> str:
    return f"viewer-{uuid4().hex[:10]}@example.com"


def signed_in(email: str) -> dict[str, str]:
    return auth(issue_token(secret=INSECURE_JWT_SECRET, user_id=f"u-{email}", email=email))


async def mail_to(smtp: MailCatcher, address: str, count: int = 1) -> list[EmailMessage]:
    await eventually(lambda: len(smtp.to(address)) >= count, timeout=20)
    return smtp.to(address)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()  # type: ignore[attr-defined]


def link(message: EmailMessage, path: str) -> str:
    """The link of the message's text to `path` (e.g. /api/live/reminders/confirm)."""
    found = re.search(re.escape(PUBLIC + path) + r"\S*", text_of(message))
    assert found, text_of(message)
    return found.group(0)[len(PUBLIC) :]


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]
