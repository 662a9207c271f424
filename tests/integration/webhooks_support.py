"""What the webhooks service tests share: settings with a short retry schedule, events put on
the run's bus as their producers would, and an endpoint registered on the test receiver."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
from nats.js import JetStreamContext

from contracts import Envelope, new_envelope, subject_for
from contracts.chat import ChatMessage, ChatPosted
from contracts.products import CartAdded, LiveProduct, ProductFeatured
from services.webhooks.settings import WebhooksSettings
from tests.support.webhook_receiver import Receiver


def settings_for(env: dict, **overrides: Any) -> WebhooksSettings:
    values = {
        **env,
        "webhooks_retry_delays_s": (0.3, 0.6, 1.0),
        "webhooks_attempt_timeout_s": 1.0,
        "webhooks_lease_s": 5.0,
        "webhooks_poll_interval_s": 0.1,
        **overrides,
    }
    return WebhooksSettings(_env_file=None, **values)  # type: ignore[call-arg]


async def publish(
    js: JetStreamContext, env: dict, envelope: Envelope, *, msg_id: str | None = None
) -> None:
    """`msg_id`: another Nats-Msg-Id than the event's, which JetStream would not de-duplicate
    (a producer that re-published the event under a new id)."""
    await js.publish(
        subject_for(envelope.stream_id, envelope.type, root=env["subject_root"]),
        envelope.model_dump_json().encode(),
        stream=env["jetstream_stream"],
        headers={"Nats-Msg-Id": msg_id or str(envelope.id)},
    )


def cart_added(live: UUID) -> Envelope:
    return new_envelope(
        CartAdded(
            product_id=uuid4(), quantity=2, cart_id=uuid4(), session_id="session-secret-1",
            user_id="user-42", unit_price=Decimal("19.90"), currency="EUR",
        ),
        stream_id=live, producer="products",
    )  # fmt: skip


def chat_posted(live: UUID, text: str = "hello") -> Envelope:
    message = ChatMessage(
        id=uuid4(), user_id="user-42", display_name="Zoé Martin", message=text,
        created_at=datetime.now(UTC),
    )  # fmt: skip
    return new_envelope(ChatPosted(message=message), stream_id=live, producer="chat")


def featured(live: UUID, n: int) -> Envelope:
    product = LiveProduct(product_id=uuid4(), name=f"product {n}", price=Decimal(n), currency="EUR")
    return new_envelope(ProductFeatured(product=product), stream_id=live, producer="products")


async def register(
    client: httpx.AsyncClient, admin: dict, receiver: Receiver, name: str, **fields: Any
) -> dict:
    """An endpoint at the receiver's `name`, whose secret the receiver then checks."""
    answer = await client.post(
        "/api/webhooks/endpoints",
        json={"url": receiver.url(name), "event_types": ["*"], **fields},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    receiver.secrets[name] = endpoint["secret"]
    return endpoint
