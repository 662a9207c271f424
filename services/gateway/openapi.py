"""What the gateway's OpenAPI document (`/docs`) says beyond its routes' signatures.

Most routes pass the request on and the owning service's answer back byte for byte, so they name
that service's own models for the document only: FastAPI hands a returned `Response` back as it
is (no validation, no serialisation), and `body` documents a request body that is never parsed
here. The error answers come in groups, by what a route stands on, each in Vitrine's one shape
`{"detail": …}` (chassis/errors.py).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

Answers = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """Every error answer, the gateway's own and the services' alike."""

    detail: str | list[Any] | dict[str, Any] = Field(
        description="what is wrong: a sentence; for a 422 the list of the inputs not valid"
    )


RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before asking again",
        "schema": {"type": "integer"},
    }
}


def error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """One documented error answer; `retry_after`: it says when to come back."""
    answer: dict[str, Any] = {"model": ErrorBody, "description": description}
    if retry_after:
        answer["headers"] = RETRY_AFTER
    return answer


# What any route that asks a service may answer besides its own (services/gateway/upstream.py).
UPSTREAM: Answers = {
    422: error("a parameter or the body is not valid (said by the gateway or by the service)"),
    502: error("the service dropped the connection without an answer, or answered garbage"),
    503: error("the service is unavailable, or the gateway busy", retry_after=True),
    504: error("the service did not answer in time"),
}
# By who may call: anyone (a token is optional, but checked when sent), the signed-in, admins.
TOKEN: Answers = {401: error("the token sent is malformed, expired or forged")}
SIGNED_IN: Answers = {401: error("sign in first: no token, or one malformed, expired or forged")}
ADMIN: Answers = {**SIGNED_IN, 403: error("admins only")}
MODERATOR: Answers = {**SIGNED_IN, 403: error("the chat's moderators (and admins) only")}
# By what a route does.
PAGED: Answers = {400: error("a cursor that this route did not give")}
NOT_FOUND: Answers = {404: error("no such live or item, or none the caller may see")}
CONFLICT: Answers = {409: error("not possible in the present state (a live that ended, say)")}
BODY: Answers = {413: error("the request body is over the gateway's limit")}
THROTTLED: Answers = {429: error("too many requests from this client", retry_after=True)}


def answers(*groups: Answers) -> Answers:
    """`UPSTREAM` with these groups: what a route that asks a service may answer."""
    merged = dict(UPSTREAM)
    for group in groups:
        merged.update(group)
    return dict(sorted(merged.items(), key=lambda answer: str(answer[0])))


# The forwarded bodies' models, by name: FastAPI adds to the components only the bodies it parses.
_REQUEST_MODELS: dict[str, type[BaseModel]] = {}


def body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a forwarded JSON body as the owning service's `model`, which
    that service validates: the gateway passes the bytes on unread."""
    known = _REQUEST_MODELS.setdefault(model.__name__, model)
    assert known is model, f"two request models are named {model.__name__}"
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


Handler = TypeVar("Handler", bound=Callable[..., Any])


def each_method(
    router: APIRouter, path: str, operations: dict[str, tuple[str, str]], **shared: Any
) -> Callable[[Handler], Handler]:
    """Route `path` to the handler once per method, so that each is an operation of its own:
    `operations` maps a method to its operation id and summary; `shared` is what they all have
    (tags, responses)."""

    def register(handler: Handler) -> Handler:
        for method, (name, summary) in operations.items():
            router.add_api_route(
                path, handler, methods=[method], operation_id=name, summary=summary, **shared
            )
        return handler

    return register


def operation_id(route: APIRoute) -> str:
    """The handler's name (`list_streams`); a handler behind several routes names each one
    with `operation_id=`."""
    return route.name


def install(app: FastAPI) -> None:
    """Put the forwarded bodies' models in the app's document, beside FastAPI's own."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        document = generate()
        if fresh:
            # Here, not at import: the services' routes are assembled only when the document is.
            from services.gateway import service_docs

            _add_request_models(document)
            service_docs.merge(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_request_models(document: dict[str, Any]) -> None:
    """Each request model's schema, as the service validates it, and those it refers to."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in _REQUEST_MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    # Without the nulls, as FastAPI renders its own schemas (`"default": null` left out).
    for name, schema in jsonable_encoder(schemas.get("$defs", {}), exclude_none=True).items():
        present = components.setdefault(name, schema)
        if present != schema:  # a response's schema of the same name, as FastAPI renders it
            raise ValueError(f"the request model {name} differs from the component so named")
