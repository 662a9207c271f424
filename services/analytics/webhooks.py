"""The shops' order webhooks: the signature over the raw body is checked before anything is read,
then each order (or refund) is stored and credited.

Answers: 401 when the caller is not the shop (nothing read, nothing changed); 400 for a signed
body that is no order; 200 once handled — also for repeated deliveries and topics analytics does
not follow, so the shop stops retrying them.
"""

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status

from chassis.routes import SessionDep
from services.analytics import orders, shopify_orders, woocommerce_orders
from services.analytics.attribution import Credit
from services.analytics.domain import SHOPIFY, signature_is_valid

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"], include_in_schema=False)

PING = re.compile(rb"^webhook_id=\d+$")


def _verify(body: bytes, signature: str | None, secrets: Sequence[str], *, setting: str) -> None:
    if not secrets:
        log.warning("a shop's webhook came but %s is not set", setting)
    if not any(signature_is_valid(body=body, signature=signature, secret=s) for s in secrets):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid webhook signature")


def _recorded(order_id: str, credits: list[Credit]) -> dict[str, Any]:
    return {
        "status": "recorded",
        "order_id": order_id,
        "streams": sorted({str(c.stream_id) for c in credits}),
    }


@router.post("/webhooks/woocommerce")
@router.post("/webhooks/woocommerce/{rest:path}")
async def woocommerce_order(request: Request, session: SessionDep) -> dict:
    """An order webhook (`order.created`, `order.updated`) signed with the webhook's secret."""
    body = await request.body()
    signature = request.headers.get("x-wc-webhook-signature")
    if signature is None and PING.match(body):
        return {"status": "pong"}  # WooCommerce checks a new webhook's URL with an unsigned ping
    secret = request.app.state.deps.settings.woocommerce_webhook_secret
    secrets = [secret.get_secret_value()] if secret else []
    _verify(body, signature, secrets, setting="WOOCOMMERCE_WEBHOOK_SECRET")
    topic = request.headers.get("x-wc-webhook-topic", "order.created")
    if topic not in woocommerce_orders.TOPICS:
        return {"status": "ignored", "topic": topic}
    try:
        order = woocommerce_orders.parse_order(json.loads(body))
    except ValueError as error:  # JSON or order
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not an order: {error}") from None
    credits = await orders.record(session, order)
    await session.commit()
    return _recorded(order.order_id, credits)


@router.post("/webhooks/shopify")
@router.post("/webhooks/shopify/{rest:path}")
async def shopify_order(request: Request, session: SessionDep) -> dict:
    """Shopify's `orders/create`, `orders/updated`, `orders/paid`, `orders/cancelled` and
    `refunds/create`, signed with the app's secret; `X-Shopify-Webhook-Id` counts each once."""
    body = await request.body()
    settings = request.app.state.deps.settings
    _verify(
        body,
        request.headers.get("x-shopify-hmac-sha256"),
        settings.shopify_webhook_secrets,
        setting="SHOPIFY_WEBHOOK_SECRET",
    )
    topic = request.headers.get("x-shopify-topic", "")
    if topic not in (*shopify_orders.ORDER_TOPICS, *shopify_orders.REFUND_TOPICS):
        return {"status": "ignored", "topic": topic}
    store: Callable[[], Awaitable[list[Credit]]]
    try:
        payload = json.loads(body)
        if topic in shopify_orders.ORDER_TOPICS:
            order = shopify_orders.parse_order(payload)
            order_id, store = order.order_id, partial(orders.record, session, order)
        else:
            order_id, refund = shopify_orders.parse_refund(payload)
            store = partial(
                orders.record_refund, session, source=SHOPIFY, order_id=order_id, refund=refund
            )
    except ValueError as error:  # JSON, order or refund
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not an order: {error}") from None
    webhook_id = request.headers.get("x-shopify-webhook-id")
    if webhook_id and not await orders.first_delivery(
        session, source=SHOPIFY, webhook_id=webhook_id, topic=topic
    ):
        return {"status": "duplicate", "webhook_id": webhook_id}
    credits = await store()
    await session.commit()
    return _recorded(order_id, credits)
