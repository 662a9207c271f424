"""The shops' product webhooks: stock and price stay true while a live shows the product.

- Shopify, `POST /webhooks/shopify`: `products/update` brings every cached variant of the product
  up to the payload; `inventory_levels/update` tells one inventory item's level at one location,
  so the variant's stock (all locations) is asked of Shopify again.
- WooCommerce, `POST /webhooks/woocommerce`: `product.updated` carries the product's JSON;
  `product.deleted` (trashed or deleted) leaves the product sold out.

Answers: 401 when the signature is not the shop's (nothing looked at, nothing changed); 200 once
handled, also for a delivery seen before, a late one (a later change of the product was applied),
another shop's, an unknown product or another topic, so shops stop retrying them; 503 when
Shopify could not be asked, so that it delivers again. Every change goes through
`cache_products`: the lives showing the product tell their viewers (`product.updated`).
"""

import base64
import hashlib
import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import SecretStr

from chassis.routes import SessionDep
from services.products import shop_updates
from services.products.api_deps import DepsDep
from services.products.models import SETTINGS_ROW_ID, CatalogSettings, Source
from services.products.shop_updates import Delivery, InvalidPayload
from services.products.shops import ShopUnavailable

log = logging.getLogger(__name__)

SHOPIFY_TOPICS = ("products/update", "inventory_levels/update")
WOOCOMMERCE_TOPICS = ("product.updated", "product.deleted")
WOOCOMMERCE_PING = re.compile(rb"^webhook_id=\d+$")  # a new webhook's unsigned check
DELIVERY_ID_MAX = 200

router = APIRouter(prefix="/webhooks", tags=["webhooks"], include_in_schema=False)


# --- routes -------------------------------------------------------------------------------------


@router.post("/shopify")
@router.post("/shopify/{rest:path}")
async def shopify_webhook(request: Request, session: SessionDep, deps: DepsDep) -> dict[str, str]:
    """A Shopify webhook, signed with the app's secret (`X-Shopify-Hmac-Sha256`)."""
    body = await request.body()
    _verify(
        body,
        request.headers.get("x-shopify-hmac-sha256"),
        deps.settings.shopify_webhook_secret,
        setting_name="SHOPIFY_WEBHOOK_SECRET",
    )
    topic = request.headers.get("x-shopify-topic", "")
    if topic not in SHOPIFY_TOPICS:
        return {"status": "ignored", "topic": topic}
    delivery = _delivery(Source.SHOPIFY, request.headers.get("x-shopify-webhook-id"), topic)
    if not _our_shop(
        await session.get(CatalogSettings, SETTINGS_ROW_ID),
        request.headers.get("x-shopify-shop-domain"),
    ):
        return {"status": "ignored", "reason": "another shop"}
    change = (
        shop_updates.shopify_product_updated
        if topic == "products/update"
        else shop_updates.shopify_inventory_updated
    )
    try:
        done = await change(session=session, deps=deps, delivery=delivery, payload=_payload(body))
    except InvalidPayload as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    except ShopUnavailable as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Shopify could not be asked: {error}"
        ) from None
    return {"status": done}


@router.post("/woocommerce")
@router.post("/woocommerce/{rest:path}")
async def woocommerce_webhook(
    request: Request, session: SessionDep, deps: DepsDep
) -> dict[str, str]:
    """A WooCommerce webhook, signed with the webhook's secret (`X-WC-Webhook-Signature`)."""
    body = await request.body()
    signature = request.headers.get("x-wc-webhook-signature")
    if signature is None and WOOCOMMERCE_PING.match(body):
        return {"status": "pong"}
    _verify(
        body,
        signature,
        deps.settings.woocommerce_webhook_secret,
        setting_name="WOOCOMMERCE_WEBHOOK_SECRET",
    )
    topic = request.headers.get("x-wc-webhook-topic", "")
    if topic not in WOOCOMMERCE_TOPICS:
        return {"status": "ignored", "topic": topic}
    delivery = _delivery(Source.WOOCOMMERCE, request.headers.get("x-wc-webhook-delivery-id"), topic)
    try:
        done = await shop_updates.woocommerce_product_changed(
            session=session, deps=deps, delivery=delivery, payload=_payload(body)
        )
    except InvalidPayload as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return {"status": done}


def secrets_of(setting: SecretStr | None) -> list[str]:
    """A secret setting: one secret, or several separated by commas while rotating."""
    if setting is None:
        return []
    return [part.strip() for part in setting.get_secret_value().split(",") if part.strip()]


def signature_valid(*, body: bytes, signature: str | None, secrets: list[str]) -> bool:
    """Both shops sign alike: base64 of HMAC-SHA256 over the raw body, with any of `secrets`."""
    if not signature or not secrets:
        return False
    given = signature.strip().encode()
    matches = [
        hmac.compare_digest(
            base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()), given
        )
        for secret in secrets
    ]
    return any(matches)


def _verify(
    body: bytes, signature: str | None, setting: SecretStr | None, *, setting_name: str
) -> None:
    secrets = secrets_of(setting)
    if not secrets:
        log.warning("a shop webhook came but %s is not set: refused", setting_name)
    if not signature_valid(body=body, signature=signature, secrets=secrets):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid webhook signature")


def _delivery(source: Source, delivery_id: str | None, topic: str) -> Delivery:
    if not delivery_id or len(delivery_id) > DELIVERY_ID_MAX:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the delivery id is missing or too long")
    return Delivery(source=source, delivery_id=delivery_id, topic=topic)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not a JSON object")
    return payload


def _our_shop(row: CatalogSettings | None, domain: str | None) -> bool:
    """Another shop of the same app signs with the same secret: its webhooks are not ours."""
    configured = urlsplit(row.config.get("shopify_url", "")).hostname if row else None
    if not configured or not configured.endswith(".myshopify.com") or not domain:
        return True  # a custom admin address names no shop domain to compare
    return domain.strip().lower() == configured.lower()
