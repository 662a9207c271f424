"""The platform lives are created on: the admin's settings (secrets sealed at rest, masked in
every answer) and the video provider they configure."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.outbox import Outbox
from chassis.secrets import MASK, SecretBox, mask
from contracts.streams import Platform
from services.streams.models import (
    SETTINGS_ROW_ID,
    LiveStream,
    LiveStreamSettings,
    SettingsRead,
    SettingsWrite,
)
from services.streams.providers.base import (
    InvalidProviderConfig,
    SecretsStore,
    SecretsUpdate,
    VideoProvider,
)
from services.streams.providers.registry import (
    SUPPORTED_PLATFORMS,
    build_provider,
    validate_config,
)
from services.streams.settings import StreamsSettings

DEFAULT_PLATFORM = Platform.NGINX_RTMP


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the session; built once in `create_app`."""

    settings: StreamsSettings
    outbox: Outbox
    box: SecretBox


def _now() -> datetime:
    return datetime.now(UTC)


async def get_settings(*, session: AsyncSession, deps: Deps) -> SettingsRead:
    row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
    return _settings_read(row, box=deps.box)


async def put_settings(*, session: AsyncSession, deps: Deps, data: SettingsWrite) -> SettingsRead:
    """Choose the platform and its settings. Secrets are sealed; one left out, or sent back
    masked, keeps its stored value; one sent as null or "" is removed."""
    config = validate_config(data.platform, data.config)
    await session.execute(
        insert(LiveStreamSettings)
        .values(id=SETTINGS_ROW_ID, platform=DEFAULT_PLATFORM, config={}, secrets_sealed={})
        .on_conflict_do_nothing()
    )
    row = await session.get(
        LiveStreamSettings, SETTINGS_ROW_ID, with_for_update=True, populate_existing=True
    )
    assert row is not None
    sealed = dict(row.secrets_sealed)
    for name, value in data.secrets.items():
        if not value:
            sealed.pop(name, None)
        elif not value.startswith(MASK):
            sealed[name] = deps.box.seal(value)
    row.platform = data.platform
    row.config = config
    row.secrets_sealed = sealed
    row.updated_at = _now()
    await session.commit()
    return _settings_read(row, box=deps.box)


def _settings_read(row: LiveStreamSettings | None, *, box: SecretBox) -> SettingsRead:
    if row is None:
        return SettingsRead(
            platform=DEFAULT_PLATFORM,
            config={},
            secrets={},
            supported_platforms=SUPPORTED_PLATFORMS,
        )
    return SettingsRead(
        platform=row.platform,
        config=row.config,
        secrets={name: _masked(sealed, box=box) for name, sealed in row.secrets_sealed.items()},
        supported_platforms=SUPPORTED_PLATFORMS,
        updated_at=row.updated_at,
    )


def _masked(sealed: str, *, box: SecretBox) -> str | None:
    try:
        return mask(box.open(sealed))
    except ValueError:  # sealed under another VITRINE_SECRET_KEY: it exists, that is all we know
        return MASK


async def configured_provider(*, session: AsyncSession, deps: Deps) -> VideoProvider:
    row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
    if row is None:
        return build_provider(DEFAULT_PLATFORM, settings=deps.settings, config={}, secrets={})
    return build_provider(
        row.platform,
        settings=deps.settings,
        config=row.config,
        secrets=_open_all(row.secrets_sealed, box=deps.box),
        store=_secrets_store(session, deps=deps),
    )


def _secrets_store(session: AsyncSession, *, deps: Deps) -> SecretsStore:
    """Lets a provider change its stored secrets in a transaction of its own, committed whatever
    becomes of the caller's: an OAuth refresh invalidates the previous tokens at once."""
    engine = session.bind

    async def store(update: SecretsUpdate) -> dict[str, str]:
        async with AsyncSession(engine, expire_on_commit=False) as own, own.begin():
            row = await own.get(
                LiveStreamSettings, SETTINGS_ROW_ID, with_for_update=True, populate_existing=True
            )
            if row is None:
                raise InvalidProviderConfig("the provider's settings are gone")
            current = _open_all(row.secrets_sealed, box=deps.box)
            changes = await update(current)
            if changes:
                sealed = {name: deps.box.seal(value) for name, value in changes.items()}
                row.secrets_sealed = {**row.secrets_sealed, **sealed}
                row.updated_at = _now()
            return {**current, **changes}

    return store


async def provider_of(stream: LiveStream, *, session: AsyncSession, deps: Deps) -> VideoProvider:
    """The provider a live was created on (settings apply if that platform is still chosen)."""
    row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    if row is not None and row.platform == stream.platform:
        config, secrets = row.config, _open_all(row.secrets_sealed, box=deps.box)
    return build_provider(
        stream.platform,
        settings=deps.settings,
        config=config,
        secrets=secrets,
        store=_secrets_store(session, deps=deps),
    )


async def stored_secrets(*, session: AsyncSession, deps: Deps) -> dict[str, str]:
    """Every stored provider secret, opened (webhook secrets stay valid across platform changes,
    so lives created before a switch are still heard)."""
    row = await session.get(LiveStreamSettings, SETTINGS_ROW_ID)
    if row is None:
        return {}
    opened = {}
    for name, sealed in row.secrets_sealed.items():
        try:
            opened[name] = deps.box.open(sealed)
        except ValueError:
            continue
    return opened


def _open_all(sealed: dict[str, str], *, box: SecretBox) -> dict[str, str]:
    return {name: box.open(value) for name, value in sealed.items()}
