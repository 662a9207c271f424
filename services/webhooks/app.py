"""The webhooks service's composition root: everything is built here, nothing at import."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from chassis.mailer import Mailer, SmtpMailer, SmtpServer
from chassis.migrations import upgrade
from chassis.runtime import readiness, service_runtime
from chassis.secrets import SecretBox
from chassis.web import create_web_app
from services.webhooks import api, intake
from services.webhooks.alerts import Alerts
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.models import outbox, processed_events
from services.webhooks.sender import Sender
from services.webhooks.settings import WebhooksSettings

SERVICE = "webhooks"
MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(settings: WebhooksSettings) -> None:
    """Bring the webhooks schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


def create_app(settings: WebhooksSettings, *, mailer: Mailer | None = None) -> FastAPI:
    """`mailer`: another way to send the admin's alerts than SMTP_URL (tests)."""
    server = SmtpServer.from_url(settings.smtp_url)  # a bad SMTP_URL stops the start, said why

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            app.state.settings = settings
            app.state.box = SecretBox(settings.vitrine_secret_key.get_secret_value())
            sender = Sender(
                timeout_s=settings.webhooks_attempt_timeout_s,
                private_allowed=settings.private_targets_allowed,
            )
            alerts_mailer = mailer or SmtpMailer(
                server, timeout_s=settings.smtp_timeout_s, ca_bundle=settings.smtp_ca_bundle, keep=1
            )
            app.state.dispatcher = dispatcher = Dispatcher(
                sessions=runtime.sessions, sender=sender, box=app.state.box, settings=settings,
                alerts=Alerts(
                    mailer=alerts_mailer, to=settings.webhooks_admin_email,
                    sender=settings.smtp_from,
                ),
            )  # fmt: skip
            # Every event of every live from now on (the stream's past was for no endpoint);
            # the handler queues each for the endpoints that want it.
            app.state.consumer = runtime.consume(
                durable="webhooks",
                events=">",
                handler=intake.handler(dispatcher.wake),
                processed=processed_events,
                from_now=True,
            )
            runtime.run(dispatcher.run(), "dispatcher")
            try:
                yield
            finally:
                await runtime.stop()  # the dispatcher first, then what it sends with
                await sender.close()
                await alerts_mailer.close()

    app = create_web_app(service=SERVICE, lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.readiness.update(readiness(app))
    api.install(app)
    return app
