"""Use cases of the endpoints: register, change, rotate the secret, re-enable, remove.

The signing secret is 24 random bytes, shown as `whsec_<base64>` once (when created or rotated)
and kept sealed with VITRINE_SECRET_KEY.
"""

import base64
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pages import decode_cursor, encode_cursor
from chassis.secrets import SecretBox
from services.webhooks.models import DeliveryStatus, EndpointStatus, deliveries, endpoints
from services.webhooks.schemas import (
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from services.webhooks.settings import WebhooksSettings
from services.webhooks.targets import check_url

SECRET_BYTES = 24


# deadlock detected, serialization failure: a concurrent change won, this one may be tried again
CONFLICT_STATES = ("40P01", "40001")
TRIES_ON_CONFLICT = 3

T = TypeVar("T")


class EndpointNotFound(LookupError):
    pass


class TooManyEndpoints(Exception):
    pass


class EndpointNotDisabled(Exception):
    """Only a disabled endpoint is enabled (an enabled one keeps its failures and backoff)."""


class Conflicted(Exception):
    """The database kept refusing the change for concurrent ones: to be tried again shortly."""


async def _retrying(session: AsyncSession, change: Callable[[], Awaitable[T]]) -> T:
    """The change, in a transaction of its own, again if the database gave it up for a
    concurrent one (a deadlock with the dispatcher recording an outcome, say)."""
    for _ in range(TRIES_ON_CONFLICT):
        try:
            return await change()
        except DBAPIError as error:
            if str(getattr(error.orig, "sqlstate", "") or "") not in CONFLICT_STATES:
                raise
            await session.rollback()
    raise Conflicted("the endpoint is being changed concurrently: try again")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def public(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint.model_validate(row, from_attributes=True)


def _with_secret(row: Any, secret: str) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(**public(row).model_dump(), secret=secret)


def _selectors(event_types: list[str]) -> list[str]:
    """Without repeats, in the order given; `*` alone when it is among them."""
    return ["*"] if "*" in event_types else list(dict.fromkeys(event_types))


async def create_endpoint(
    *, session: AsyncSession, settings: WebhooksSettings, box: SecretBox,
    data: WebhookEndpointCreate,
) -> WebhookEndpointWithSecret:  # fmt: skip
    url = check_url(data.url, private_allowed=settings.private_targets_allowed)
    count = await session.scalar(sa.select(sa.func.count()).select_from(endpoints))
    if (count or 0) >= settings.webhooks_max_endpoints:
        raise TooManyEndpoints(f"at most {settings.webhooks_max_endpoints} endpoints")
    now, secret = datetime.now(UTC), new_secret()
    row = (
        await session.execute(
            sa.insert(endpoints)
            .values(
                id=uuid.uuid4(),
                url=url,
                description=data.description,
                event_types=_selectors(data.event_types),
                allow_personal_data=data.allow_personal_data,
                secret=box.seal(secret),
                status=EndpointStatus.ENABLED.value,
                created_at=now,
                updated_at=now,
            )
            .returning(endpoints)
        )
    ).one()
    await session.commit()
    return _with_secret(row, secret)


async def list_endpoints(
    *, session: AsyncSession, cursor: str | None, limit: int
) -> WebhookEndpointList:
    """Oldest first, a page at a time."""
    e = endpoints.c
    query = sa.select(endpoints).order_by(e.created_at, e.id).limit(limit + 1)
    if cursor is not None:
        after = decode_cursor(cursor, datetime, UUID)
        query = query.where(sa.tuple_(e.created_at, e.id) > sa.tuple_(*after))
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    last = page[-1] if page else None
    return WebhookEndpointList(
        items=[public(row) for row in page],
        next_cursor=encode_cursor(last.created_at, last.id)
        if last is not None and len(rows) > limit
        else None,
    )


async def _row(session: AsyncSession, endpoint_id: UUID, *, lock: bool = False) -> Any:
    query = sa.select(endpoints).where(endpoints.c.id == endpoint_id)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise EndpointNotFound(endpoint_id)
    return row


async def get_endpoint(*, session: AsyncSession, endpoint_id: UUID) -> WebhookEndpoint:
    return public(await _row(session, endpoint_id))


async def update_endpoint(
    *, session: AsyncSession, settings: WebhooksSettings, endpoint_id: UUID,
    data: WebhookEndpointUpdate,
) -> WebhookEndpoint:  # fmt: skip
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        changes["url"] = check_url(changes["url"], private_allowed=settings.private_targets_allowed)
    for required in ("url", "event_types", "allow_personal_data"):
        if required in changes and changes[required] is None:
            del changes[required]  # null for these means "unchanged"; description may be cleared
    if "event_types" in changes:
        changes["event_types"] = _selectors(changes["event_types"])
    await _row(session, endpoint_id, lock=True)
    row = (
        await session.execute(
            sa.update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(**changes, updated_at=datetime.now(UTC))
            .returning(endpoints)
        )
    ).one()
    await session.commit()
    return public(row)


async def delete_endpoint(*, session: AsyncSession, endpoint_id: UUID) -> None:
    """The endpoint and its delivery log; what was still to send to it is dropped."""

    async def delete() -> None:
        # The endpoint locked first, then its deliveries (the cascade): the dispatcher's order.
        gone = await session.execute(
            sa.delete(endpoints).where(endpoints.c.id == endpoint_id).returning(endpoints.c.id)
        )
        if gone.first() is None:
            raise EndpointNotFound(endpoint_id)
        await session.commit()

    await _retrying(session, delete)


async def rotate_secret(
    *, session: AsyncSession, settings: WebhooksSettings, box: SecretBox, endpoint_id: UUID
) -> WebhookEndpointWithSecret:
    """A new secret; the old one goes on signing beside it for the grace period."""
    current = await _row(session, endpoint_id, lock=True)
    now, secret = datetime.now(UTC), new_secret()
    grace = timedelta(seconds=settings.webhooks_rotation_grace_s)
    row = (
        await session.execute(
            sa.update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(
                secret=box.seal(secret),
                previous_secret=current.secret if grace else None,
                previous_secret_until=now + grace if grace else None,
                updated_at=now,
            )
            .returning(endpoints)
        )
    ).one()
    await session.commit()
    return _with_secret(row, secret)


async def enable_endpoint(*, session: AsyncSession, endpoint_id: UUID) -> WebhookEndpoint:
    """Enabled again after it was disabled, its failure count cleared; what was pending goes
    out now, in order."""

    async def enable() -> WebhookEndpoint:
        # The endpoint locked first, then its deliveries: the dispatcher's order.
        current = await _row(session, endpoint_id, lock=True)
        if current.status != EndpointStatus.DISABLED.value:
            raise EndpointNotDisabled("the endpoint is not disabled")
        now = datetime.now(UTC)
        row = (
            await session.execute(
                sa.update(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .values(
                    status=EndpointStatus.ENABLED.value,
                    disabled_reason=None,
                    disabled_at=None,
                    consecutive_failures=0,
                    failing_since=None,
                    updated_at=now,
                )
                .returning(endpoints)
            )
        ).one()
        await session.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(next_attempt_at=now)
        )
        await session.commit()
        return public(row)

    return await _retrying(session, enable)
