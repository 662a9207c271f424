"""What every service's routes stand on: a database session per request, the use cases' other
dependencies, and the use cases' errors said as HTTP answers — one way, one shape (`{"detail"}`).
"""

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session of the service's pool for the length of one request."""
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]


def use_case_deps(request: Request) -> Any:
    """What the service's use cases need besides a session: its `Deps`, built in `create_app`.
    A service types it: `DepsDep = Annotated[Deps, Depends(use_case_deps)]`."""
    return request.app.state.deps


@dataclass(frozen=True)
class Refusal:
    """How a use case's error is answered: a status, and what `detail` says (by default the
    error's own message), with headers if it needs them (`Retry-After`)."""

    status: int
    detail: str | Callable[[Exception], object] | None = None
    headers: Callable[[Exception], dict[str, str]] | None = None


def answer_domain_errors(app: FastAPI, refusals: Mapping[type[Exception], int | Refusal]) -> None:
    """Answer each of these errors, raised anywhere under a route, as `{"detail": …}` with its
    status (an error of several kinds: the first listed decides)."""
    table = {kind: r if isinstance(r, Refusal) else Refusal(r) for kind, r in refusals.items()}

    async def refuse(request: Request, error: Exception) -> Response:
        refusal = next(r for kind, r in table.items() if isinstance(error, kind))
        detail = refusal.detail(error) if callable(refusal.detail) else refusal.detail
        headers = refusal.headers(error) if refusal.headers else None
        return JSONResponse(
            {"detail": str(error) if detail is None else detail},
            status_code=refusal.status,
            headers=headers,
        )

    for kind in table:
        app.add_exception_handler(kind, refuse)
