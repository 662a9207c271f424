"""The services' own word on the routes the gateway forwards, put into the gateway's document.

A forwarded route keeps its path, so the service that answers it documents the same path: its
query and header parameters, its body, its answers. Each gateway operation takes from there what
it does not say itself (the gateway's own answers — who may call, the error groups — stay), and
each route behind a catch-all (`/api/catalog/{rest}`) is documented as the service's concrete
operation, with the catch-all's tags and error answers, in place of the catch-all. Nothing is
copied by hand, so the document follows the services' code.
"""

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from chassis import auth
from services.gateway.openapi import (
    ADMIN,
    BODY,
    MODERATOR,
    PAGED,
    SIGNED_IN,
    TOKEN,
    Answers,
    error,
)

Document = dict[str, Any]
# What a route behind a catch-all may refuse by who calls, after the service's own guard; the
# strictest it stands on decides.
CALLERS: list[tuple[Callable[..., Any], Answers]] = [
    (auth.admin, ADMIN),
    (auth.moderator, MODERATOR),
    (auth.signed_in, SIGNED_IN),
    (auth.optional_principal, TOKEN),
]

# The services behind the gateway, by their `services.<name>.api` module (each has install(app)).
FORWARDED_TO = ("streams", "products", "chat", "analytics", "notifications", "webhooks")
CATCH_ALL = "/{rest}"
METHODS = ("get", "put", "post", "delete", "patch")


def _operation_id(route: APIRoute) -> str:
    return route.name


def service_document(name: str) -> Document:
    """The service's document as its routes make it, each operation named by its handler and
    saying whom it refuses (`x-callers`: the gateway's answers for its guard); the service's
    app is only assembled (no settings, nothing started)."""
    app = FastAPI(title=name, generate_unique_id_function=_operation_id)
    importlib.import_module(f"services.{name}.api").install(app)
    document = app.openapi()
    for route in _api_routes(app.routes):
        if route.include_in_schema:
            for method in route.methods or ():
                operation = document["paths"][route.path_format][method.lower()]
                operation["x-callers"] = _callers(route)
    return document


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The routes, those of included routers too (FastAPI ≥ 0.165 keeps an included router
    whole; its routers here carry their prefix themselves)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _callers(route: APIRoute) -> Answers:
    guards = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        guards.add(dependency.call)
        pending.extend(dependency.dependencies)
    return next((answers for guard, answers in CALLERS if guard in guards), {})


def merge(document: Document, services: dict[str, Document] | None = None) -> None:
    """Complete `document` (the gateway's) with the services' documents, in place."""
    services = services or {name: service_document(name) for name in FORWARDED_TO}
    paths: dict[str, Document] = document["paths"]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    catch_alls = {path: item for path, item in paths.items() if path.endswith(CATCH_ALL)}
    taken = {op["operationId"] for p, _, op in _operations(paths) if p not in catch_alls}
    for name, theirs in services.items():
        renames = _take_schemas(schemas, theirs.get("components", {}).get("schemas", {}), name)
        for path, method, operation in _operations(theirs["paths"]):
            operation = _renamed(operation, renames)
            # Any route of the gateway refuses a token that is sent and not good.
            callers = operation.pop("x-callers", None) or TOKEN
            if method in paths.get(path, {}):
                _complete(paths[path][method], operation)
                continue
            behind = _catch_all(catch_alls, path, method)
            if behind is None:
                continue  # not public (a provider's webhook, routed by the gateway on its own)
            concrete = {
                **operation,
                "tags": behind.get("tags", operation.get("tags", [])),
                "responses": _answers(operation, behind=behind, callers=callers),
            }
            if concrete["operationId"] in taken:
                concrete["operationId"] = f"{name}_{concrete['operationId']}"
            taken.add(concrete["operationId"])
            paths.setdefault(path, {})[method] = concrete
    for path in catch_alls:
        del paths[path]
    for _, _, operation in _operations(paths):
        _say_bad_request(operation)


def _say_bad_request(operation: Document) -> None:
    """A 400 where a route has one: a cursor it did not give, a body that is not JSON."""
    why = []
    if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
        why.append(PAGED[400]["description"])
    if "requestBody" in operation:
        why.append("a body that is not JSON")
    if why and "400" not in operation["responses"]:
        (answer,) = _rendered({400: error(", or ".join(why))}).values()
        operation["responses"] = dict(sorted({**operation["responses"], "400": answer}.items()))


def _operations(paths: dict[str, Document]) -> Iterator[tuple[str, str, Document]]:
    for path, item in paths.items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _catch_all(catch_alls: dict[str, Document], path: str, method: str) -> Document | None:
    for pattern, item in catch_alls.items():
        prefix = pattern.removesuffix(CATCH_ALL)
        if method in item and _under(path, prefix):
            operation: Document = item[method]
            return operation
    return None


def _under(path: str, prefix: str) -> bool:
    """`/api/live/streams/{id}/products/order` is under `/api/live/streams/{stream_id}/products`:
    the segments match, a parameter matching any."""
    ours, theirs = prefix.split("/"), path.split("/")
    if len(theirs) <= len(ours):
        return False
    pairs = zip(ours, theirs[: len(ours)], strict=True)
    return all(a == b or (a.startswith("{") and b.startswith("{")) for a, b in pairs)


def _complete(ours: Document, theirs: Document) -> None:
    """What the gateway's operation does not say, as the service says it."""
    have = {(p["name"], p["in"]) for p in ours.get("parameters", [])}
    extra = [p for p in theirs.get("parameters", []) if (p["name"], p["in"]) not in have]
    if extra:
        ours["parameters"] = [*ours.get("parameters", []), *extra]
    if "requestBody" not in ours and "requestBody" in theirs:
        ours["requestBody"] = theirs["requestBody"]
    answers = ours.setdefault("responses", {})
    for status, answer in _successes(theirs).items():
        if status not in answers or not _has_schema(answers[status]):
            answers[status] = answer
    for status, answer in theirs.get("responses", {}).items():
        answers.setdefault(status, answer)  # the service's own refusals (404, 409 …)


def _answers(operation: Document, *, behind: Document, callers: Answers) -> Document:
    """A concrete operation's answers: the service's, the catch-all's errors but for who may
    call (the service's guard says) and a body's size (only where there is a body)."""
    common = {s: a for s, a in behind["responses"].items() if not str(s).startswith("2")}
    for status in (*ADMIN, *BODY):
        common.pop(str(status), None)
    answers = {**operation["responses"], **common, **_rendered(callers)}
    if "requestBody" in operation:
        answers.update(_rendered(BODY))
    return dict(sorted(answers.items()))


def _rendered(answers: Answers) -> Document:
    """Answers as the document says them (FastAPI renders a route's own `responses` so)."""
    rendered = {}
    for status, answer in answers.items():
        model = answer["model"]
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
        rendered[str(status)] = {
            "description": answer["description"],
            "content": {"application/json": {"schema": schema}},
            **({"headers": answer["headers"]} if "headers" in answer else {}),
        }
    return rendered


def _successes(operation: Document) -> Document:
    return {s: a for s, a in operation.get("responses", {}).items() if str(s).startswith("2")}


def _has_schema(answer: Document) -> bool:
    return any(media.get("schema") for media in answer.get("content", {}).values())


def _take_schemas(ours: Document, theirs: Document, service: str) -> dict[str, str]:
    """Add the service's component schemas; one named like a different schema of ours comes in
    as `<Name>_<service>`. Returns those renames."""
    renames = {n: f"{n}_{service}" for n, s in theirs.items() if n in ours and ours[n] != s}
    for name, schema in theirs.items():
        ours.setdefault(renames.get(name, name), _renamed(schema, renames))
    return renames


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    """`value` with each `$ref` to a renamed schema pointing at its new name."""
    if not renames:
        return value
    if isinstance(value, dict):
        return {
            key: _ref(item, renames) if key == "$ref" else _renamed(item, renames)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item, renames) for item in value]
    return value


def _ref(ref: str, renames: dict[str, str]) -> str:
    prefix, _, name = ref.rpartition("/")
    return f"{prefix}/{renames[name]}" if name in renames else ref
