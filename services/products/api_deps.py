"""What the products service's routes depend on: a database session and the use cases' deps."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.products.catalog_settings import Deps


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def _deps(request: Request) -> Deps:
    return request.app.state.deps  # type: ignore[no-any-return]


SessionDep = Annotated[AsyncSession, Depends(_session)]
DepsDep = Annotated[Deps, Depends(_deps)]
