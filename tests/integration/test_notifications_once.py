"""Each reminder goes once per subscriber and live across a restart of the service and with two
replicas side by side, on real PostgreSQL, NATS JetStream and SMTP."""

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from nats.js import JetStreamContext

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from services.notifications.app import create_app, migrate
from tests.conftest import auth, eventually
from tests.integration.notifications_support import Live, known, settings_for
from tests.support.services import serving
from vitrine.mailcatcher import MailCatcher
from vitrine.system import free_port

SUBSCRIBERS = 30


def slowly(envelope) -> None:
    """A slow mail server, so a stop comes while messages are on their way."""
    time.sleep(0.03)


def received(smtp: MailCatcher, live: Live) -> Counter[str]:
    return Counter(
        to for message, rcpts in zip(smtp.messages, smtp.recipients, strict=True)
        if str(live.id) in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        for to in rcpts
    )  # fmt: skip


async def subscribe_many(client, live: Live) -> list[str]:
    emails = [f"once-{uuid4().hex[:8]}@example.com" for _ in range(SUBSCRIBERS)]
    for email in emails:
        token = issue_token(secret=INSECURE_JWT_SECRET, user_id=email, email=email)
        answer = await client.post(
            f"/api/live/streams/{live.id}/reminders", json={}, headers=auth(token)
        )
        assert answer.status_code == 201, answer.text
    return emails


async def test_a_restart_mid_sending_sends_nobody_a_reminder_twice(
    env: dict, js: JetStreamContext, admin: dict
) -> None:
    with MailCatcher(port=free_port(), refuse=slowly) as smtp:
        settings = settings_for(
            env, smtp, db_schema_prefix="restart_", send_concurrency=2, send_lease_s=1
        )
        await migrate(settings)
        live = Live(js, env)
        async with serving(create_app(settings), "notifications") as client:
            await live.schedule(datetime.now(UTC) + timedelta(hours=1))
            await known(client, live, admin)
            emails = await subscribe_many(client, live)
            await live.start()
            await eventually(lambda: sum(received(smtp, live).values()) >= 5, timeout=20)
        stopped_at = sum(received(smtp, live).values())
        assert stopped_at < SUBSCRIBERS, "the stop came too late to test anything"
        await live.start()  # and a redelivered event while it was down
        async with serving(create_app(settings), "notifications"):
            await eventually(lambda: len(received(smtp, live)) == SUBSCRIBERS, timeout=30)
            await asyncio.sleep(2)  # past the lease: nothing claimed twice turns up
        assert received(smtp, live) == Counter({email: 1 for email in emails})


async def test_two_replicas_share_the_sending_and_send_each_reminder_once(
    env: dict, js: JetStreamContext, admin: dict
) -> None:
    with MailCatcher(port=free_port(), refuse=slowly) as smtp:
        settings = settings_for(env, smtp, db_schema_prefix="pair_", send_concurrency=3)
        await migrate(settings)
        first, second = create_app(settings), create_app(settings)
        live = Live(js, env)
        async with (
            serving(first, "notifications-1") as one,
            serving(second, "notifications-2") as two,
        ):
            await live.schedule(datetime.now(UTC) + timedelta(hours=1))
            await known(one, live, admin)
            emails = await subscribe_many(two, live)
            for _ in range(3):  # each replica may take some of these
                await live.start()
            await eventually(lambda: len(received(smtp, live)) == SUBSCRIBERS, timeout=30)
            await asyncio.sleep(1.5)
            shares = first.state.dispatcher.sent, second.state.dispatcher.sent
        assert received(smtp, live) == Counter({email: 1 for email in emails})
        assert all(share > 0 for share in shares), shares


async def test_a_sent_message_whose_record_fails_once_is_recorded_not_sent_again(
    env: dict, js: JetStreamContext, admin: dict, monkeypatch
) -> None:
    from services.notifications.dispatcher import Dispatcher
    from services.notifications.dispatcher import deliveries as table
    from services.notifications.models import DeliveryStatus

    record, failed = Dispatcher._record, []

    async def once_refused(self, delivery_id, claimed, values) -> None:
        if values["status"] == DeliveryStatus.SENT.value and not failed:
            failed.append(delivery_id)
            raise ConnectionResetError("the database went away")
        await record(self, delivery_id, claimed, values)

    monkeypatch.setattr(Dispatcher, "_record", once_refused)
    with MailCatcher(port=free_port()) as smtp:
        settings = settings_for(env, smtp, db_schema_prefix="record_", send_lease_s=1)
        await migrate(settings)
        live = Live(js, env)
        app = create_app(settings)
        async with serving(app, "notifications") as client:
            await live.schedule(datetime.now(UTC) + timedelta(hours=1))
            await known(client, live, admin)
            await subscribe_many(client, live)
            await live.start()
            await eventually(lambda: len(received(smtp, live)) == SUBSCRIBERS, timeout=20)
            await asyncio.sleep(2.5)  # past the lease: a message left `sending` would go again
            counts = (
                await client.get(f"/api/live/streams/{live.id}/reminders", headers=admin)
            ).json()
            # The fence: a process whose lease ran out (claim 1) while another took the row up
            # (claim 2) cannot overwrite the other's state.
            dispatcher = app.state.dispatcher

            async with dispatcher.sessions() as session, session.begin():
                await session.execute(
                    table.update().where(table.c.id == failed[0])
                    .values(status=DeliveryStatus.SENDING.value, attempts=2, sent_at=None)
                )  # fmt: skip
            await dispatcher._finish(failed[0], 1, status=DeliveryStatus.PENDING, error="late")
            async with dispatcher.sessions() as session:
                row = (await session.execute(table.select().where(table.c.id == failed[0]))).one()
            assert (row.status, row.last_error) == (DeliveryStatus.SENDING.value, None)
            await dispatcher._finish(failed[0], 2, status=DeliveryStatus.SENT, sent_at=row.due_at)
            async with dispatcher.sessions() as session:
                row = (await session.execute(table.select().where(table.c.id == failed[0]))).one()
            assert row.status == DeliveryStatus.SENT.value
        assert failed, "the record was refused once"
        assert received(smtp, live) == Counter({e: 1 for e in received(smtp, live)})
        assert sum(received(smtp, live).values()) == SUBSCRIBERS
        assert counts["sent"]["live"] == SUBSCRIBERS
