"""The notifications service's composition root: everything is built here, nothing at import."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from chassis.mailer import Mailer, SmtpMailer, SmtpServer
from chassis.migrations import upgrade
from chassis.runtime import readiness, service_runtime
from chassis.web import create_web_app
from services.notifications import api
from services.notifications.dispatcher import Dispatcher
from services.notifications.lives import LiveFollower
from services.notifications.models import outbox, processed_events
from services.notifications.push import PushSender, development_key, load_key, public_key_of
from services.notifications.settings import NotificationsSettings
from services.notifications.tokens import Signer

SERVICE = "notifications"
MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(settings: NotificationsSettings) -> None:
    """Bring the notifications schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


def vapid_key(settings: NotificationsSettings) -> ec.EllipticCurvePrivateKey | None:
    """VAPID_PRIVATE_KEY; in development without one, a key derived from VITRINE_SECRET_KEY."""
    if settings.vapid_private_key is not None:
        return load_key(settings.vapid_private_key.get_secret_value())
    if settings.is_development:
        return development_key(settings.vitrine_secret_key.get_secret_value())
    return None


def create_app(settings: NotificationsSettings, *, mailer: Mailer | None = None) -> FastAPI:
    """`mailer`: another way to send than SMTP_URL (tests)."""
    server = SmtpServer.from_url(settings.smtp_url)  # a bad SMTP_URL stops the start, said why
    vapid_key(settings)  # and so does a VAPID_PRIVATE_KEY that is not one

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            app.state.settings = settings
            app.state.signer = Signer(settings.vitrine_secret_key.get_secret_value())
            follower = LiveFollower(lead_minutes=settings.reminder_lead_minutes)
            # Notifications learns of the lives from `stream.*`, never by calling streams.
            app.state.consumer = runtime.consume(
                durable="notifications-streams",
                events="stream.>",
                handler=follower.on_stream_event,
                processed=processed_events,
            )
            key = vapid_key(settings)
            app.state.push_public_key = public_key_of(key) if key else None
            pusher = None
            if key is not None:
                pusher = PushSender(
                    key=key,
                    subject=settings.vapid_subject,
                    timeout_s=settings.push_timeout_s,
                    ca_bundle=settings.push_ca_bundle,
                )
            sender = mailer or SmtpMailer(
                server,
                timeout_s=settings.smtp_timeout_s,
                ca_bundle=settings.smtp_ca_bundle,
                keep=settings.send_concurrency,
            )
            app.state.dispatcher = Dispatcher(
                sessions=runtime.sessions,
                mailer=sender,
                pusher=pusher,
                settings=settings,
                signer=app.state.signer,
            )
            runtime.run(app.state.dispatcher.run(), "dispatcher")
            try:
                yield
            finally:
                await sender.close()  # what the dispatcher opens while it drains, exit closes
                if pusher is not None:
                    await pusher.close()

    app = create_web_app(service=SERVICE, lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.readiness.update(readiness(app))
    api.install(app)
    return app
