"""`make bench` (notifications): one live's `stream.started` to N subscribers, e-mail and Web Push.

In a run of its own (`bench.isolation`), N confirmed subscribers of one live — half e-mail, half
Web Push by default — are written straight into the notifications schema; the service runs in
this process as it is built (`create_app`: the `stream.*` consumer and the dispatcher), sending
to a real SMTP server on loopback (aiosmtpd, `vitrine.mailcatcher`) and to the push-service
stand-in over HTTPS (`tests.support.push_service`: it checks each VAPID token and decrypts each
payload). The clock starts when `stream.started` is published and stops when the last message
has been handed over; messages/s is N over that time. Every subscriber must get exactly one.

    uv run python -m bench.notifications --subscribers 10000 --concurrency 50
"""

import argparse
import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric import ec

from bench.cases import add_name_argument, run_case
from bench.isolation import isolated_env
from bench.report import cpu_seconds, pids_named, render
from chassis.bus import BusProvider
from chassis.db import create_engine
from contracts import new_envelope, subject_for
from contracts.streams import Platform, StreamCreated, StreamStarted, StreamStatus, StreamView
from services.notifications.app import SERVICE, create_app
from services.notifications.models import reminder_subscriptions
from services.notifications.push import b64url, public_key_of
from services.notifications.settings import NotificationsSettings
from tests.support.push_service import running_push_service
from vitrine.mailcatcher import MailCatcher
from vitrine.system import free_port

COLUMNS = (
    ("subscribers", "{subscribers:,}"),
    ("e-mail", "{emails:,}"),
    ("push", "{pushes:,}"),
    ("concurrency", "{concurrency}"),
    ("msgs/s", "{msgs_per_s:,.0f}"),
    ("first (s)", "{first_s:.2f}"),
    ("last (s)", "{last_s:.1f}"),
    ("twice", "{duplicates}"),
    ("service CPU", "{service_cpu_pct:.0f}%"),
    ("db CPU", "{db_cpu_pct:.0f}%"),
)


def view(stream_id: uuid.UUID, status: StreamStatus, at: datetime) -> StreamView:
    now = datetime.now(UTC)
    return StreamView(id=stream_id, title="Bench live", status=status, platform=Platform.MUX,
                      scheduled_at=at, created_at=now, updated_at=now)  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    pushes = round(args.subscribers * args.push_share)
    emails = args.subscribers - pushes
    with (
        MailCatcher(port=free_port()) as smtp,
        running_push_service() as (push_service, ca_bundle),
    ):
        async with isolated_env() as env:
            settings = NotificationsSettings(
                **env, smtp_url=smtp.url, send_concurrency=args.concurrency,  # type: ignore[arg-type]
                vapid_private_key=raw, vapid_subject="mailto:bench@example.com",
                push_allowed_hosts="127.0.0.1", push_ca_bundle=ca_bundle,
                dispatch_interval_s=0.05,
            )  # fmt: skip
            bus = BusProvider(
                settings.nats_url,
                name="bench-notifications",
                stream=settings.jetstream_stream,
                subject_root=settings.subject_root,
            )
            stream_id = uuid.uuid4()

            async def announce(payload: Any) -> None:
                connected = await bus.get()
                envelope = new_envelope(payload, stream_id=stream_id, producer="bench")
                await connected.js.publish(
                    subject_for(stream_id, envelope.type, root=settings.subject_root),
                    envelope.model_dump_json().encode(), stream=connected.stream,
                    headers={"Nats-Msg-Id": str(envelope.id)},
                )  # fmt: skip

            await subscribe(settings, stream_id, emails=emails, pushes=pushes,
                            push_service=push_service, key=public_key_of(key))  # fmt: skip
            print(f"{emails:,} e-mail and {pushes:,} push subscribers written", flush=True)
            app = create_app(settings)
            async with LifespanManager(app):
                later = datetime.now(UTC) + timedelta(hours=2)
                await announce(StreamCreated(stream=view(stream_id, StreamStatus.SCHEDULED, later)))
                await asyncio.sleep(1)  # the live is known before it starts
                db_before = {pid: cpu_seconds(pid) for pid in pids_named("postgres")}
                own_before = time.process_time()
                started = time.perf_counter()
                first: float | None = None
                now = datetime.now(UTC)
                await announce(StreamStarted(stream=view(stream_id, StreamStatus.LIVE, now)))
                while (done := len(smtp.messages) + len(push_service.pushes)) < args.subscribers:
                    if first is None and done:
                        first = time.perf_counter() - started
                    if time.perf_counter() - started > args.timeout:
                        raise TimeoutError(
                            f"{done:,} of {args.subscribers:,} after {args.timeout}s"
                        )
                    await asyncio.sleep(0.02)
                seconds = time.perf_counter() - started
                own = time.process_time() - own_before
                db = sum(cpu_seconds(p) - db_before.get(p, 0.0) for p in pids_named("postgres"))
                await asyncio.sleep(1)  # anything sent twice would show now
            await bus.close()
        received = Counter(to for rcpts in smtp.recipients for to in rcpts)
        received.update(push.browser for push in push_service.pushes)
    row = {
        "subscribers": args.subscribers, "emails": emails, "pushes": pushes,
        "concurrency": args.concurrency, "msgs_per_s": args.subscribers / seconds,
        "first_s": first or seconds, "last_s": seconds,
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "refused_pushes": len(push_service.refused),
        "service_cpu_pct": 100 * own / seconds, "db_cpu_pct": 100 * db / seconds,
    }  # fmt: skip
    return {"results": [row]}


async def subscribe(
    settings: NotificationsSettings, stream_id: uuid.UUID, *, emails: int, pushes: int,
    push_service: Any, key: str,
) -> None:  # fmt: skip
    """Confirmed subscribers of the live, written as the service writes them."""
    now = datetime.now(UTC)
    common = {"stream_id": stream_id, "language": "fr", "time_zone": "Europe/Paris",
              "created_at": now, "confirmed_at": now, "user_id": None}  # fmt: skip
    rows = []
    for n in range(emails):
        email = f"viewer-{n}@bench.example"
        rows.append({**common, "id": uuid.uuid4(), "channel": "email", "email": email,
                     "recipient": f"email:{email}", "push_endpoint": None,
                     "push_p256dh": None, "push_auth": None})  # fmt: skip
    for _ in range(pushes):
        _, subscription = push_service.subscribe(application_server_key=key)
        rows.append({**common, "id": uuid.uuid4(), "channel": "webpush", "email": None,
                     "recipient": f"webpush:{subscription['endpoint']}",
                     "push_endpoint": subscription["endpoint"],
                     "push_p256dh": subscription["keys"]["p256dh"],
                     "push_auth": subscription["keys"]["auth"]})  # fmt: skip
    engine = create_engine(settings.database_url, schema=settings.schema_for(SERVICE))
    async with engine.begin() as connection:
        for first in range(0, len(rows), 1000):
            await connection.execute(sa.insert(reminder_subscriptions), rows[first : first + 1000])
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--push-share", type=float, default=0.5, help="of them by Web Push")
    parser.add_argument("--concurrency", type=int, default=50, help="SEND_CONCURRENCY")
    parser.add_argument("--timeout", type=float, default=600.0)
    add_name_argument(parser, name="notifications")
    run_case(run, parser.parse_args(), lambda document: render(document["results"], COLUMNS))


if __name__ == "__main__":
    main()
