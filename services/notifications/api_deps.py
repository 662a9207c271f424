"""What the notifications routes depend on: a database session, the settings, the signer."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.settings import NotificationsSettings
from services.notifications.tokens import Signer


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def _settings(request: Request) -> NotificationsSettings:
    return request.app.state.settings


def _signer(request: Request) -> Signer:
    return request.app.state.signer


SessionDep = Annotated[AsyncSession, Depends(_session)]
SettingsDep = Annotated[NotificationsSettings, Depends(_settings)]
SignerDep = Annotated[Signer, Depends(_signer)]
