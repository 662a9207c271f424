"""FastAPI dependencies of the streams routes."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.streams.provider_settings import Deps


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def _deps(request: Request) -> Deps:
    return request.app.state.deps


SessionDep = Annotated[AsyncSession, Depends(_session)]
DepsDep = Annotated[Deps, Depends(_deps)]
