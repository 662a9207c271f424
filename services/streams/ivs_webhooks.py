"""AWS IVS's EventBridge events as a use case: the shared secret checked before anything is looked
at, then the event applied once, like any provider webhook."""

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.streams import Platform
from services.streams import provider_settings, provider_webhooks
from services.streams.models import SETTINGS_ROW_ID, LiveStreamSettings
from services.streams.provider_settings import Deps
from services.streams.providers import ivs_events

# The settings' secrets are one set kept across platforms: Mux's are `webhook_secret(_previous)`,
# so IVS's have names of their own (a Mux signing key never opens this webhook).
WEBHOOK_SECRET_NAMES = ("ivs_webhook_secret", "ivs_webhook_secret_previous")


async def receive(*, session: AsyncSession, deps: Deps, body: bytes, secret: str | None) -> str:
    """Apply one EventBridge event posted with `secret`; returns the outcome (applied, ignored,
    duplicate). BadSecret (nothing changed) unless the secret is the environment's or one the
    admin stored; ValueError if the body is not an IVS event."""
    stored = await provider_settings.stored_secrets(session=session, deps=deps)
    secrets = [stored[name] for name in WEBHOOK_SECRET_NAMES if name in stored]
    if deps.settings.ivs_webhook_secret is not None:
        secrets.append(deps.settings.ivs_webhook_secret.get_secret_value())
    ivs_events.verify_secret(given=secret, secrets=secrets)
    ref, event = ivs_events.parse_event(
        body,
        grace_s=deps.settings.rtmp_reconnect_grace_s,
        replay_base_url=await _replay_base_url(session),
    )
    return await provider_webhooks.handle(
        session=session, deps=deps, platform=Platform.AWS_IVS, provider_ref=ref, event=event
    )


async def _replay_base_url(session: AsyncSession) -> str | None:
    """The admin's replay URL (a CDN over the recording bucket) while IVS is the platform."""
    row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
    if row is None or row.platform is not Platform.AWS_IVS:
        return None
    base = row.config.get("replay_base_url")
    return base if isinstance(base, str) else None
