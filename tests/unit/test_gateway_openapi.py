"""The gateway's OpenAPI document (`/docs`) is valid OpenAPI, names each operation once, says who
may call each route and what its errors look like, and describes a forwarded body as the service
behind it does (services/gateway/openapi.py). Built from the real app; nothing is started."""

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from chassis import auth
from services.gateway import api, outbound_webhooks_api, products_api, reminders_api
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from vitrine.services import SERVICES

Document = dict[str, Any]
# The one route that asks no service: it can be refused for nothing but a bad path.
ASKS_NO_SERVICE = {"asyncapi"}
# Answered by the gateway itself, from what it gathers: not the service's answer at that path.
COMPOSED = {"get_stream", "get_replay"}


@pytest.fixture(scope="module")
def document() -> Document:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Duplicate Operation ID")  # FastAPI's warning
        return create_app(GatewaySettings()).openapi()


@pytest.fixture(scope="module")
def services_documents() -> dict[str, Document]:
    """Each service's own document, by name: what its routes take and answer."""
    documents = {}
    for name, build in SERVICES.items():
        if name != "gateway":
            spec = build()
            documents[name] = spec.create_app(spec.settings()).openapi()
    return documents


def operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_each_operation_has_its_own_readable_id(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    # FastAPI's own ids spell the path and the method (`chat_api_live_chat_post`).
    assert [i for i in ids if not i.isidentifier() or "_api_" in i or i.endswith("_get")] == []


def test_every_operation_is_tagged_and_says_when_to_come_back(document):
    for path, method, operation in operations(document):
        assert operation.get("tags"), (method, path)
        if operation["operationId"] in ASKS_NO_SERVICE:
            continue
        unavailable = operation["responses"].get("503")
        assert unavailable is not None, (method, path)
        assert "Retry-After" in unavailable["headers"], (method, path)


def test_every_error_is_documented_in_the_one_error_shape(document):
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["detail"]
    for path, method, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def _gateway_routes() -> Iterator[APIRoute]:
    for router in (
        api.router,
        products_api.router,
        reminders_api.router,
        outbound_webhooks_api.router,
    ):
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route


def _depends_on(route: APIRoute, guard: Any) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is guard:
            return True
        pending.extend(dependency.dependencies)
    return False


@pytest.mark.parametrize(
    ("guard", "statuses"),
    [
        (auth.admin, {"401", "403"}),
        (auth.signed_in, {"401"}),
        (auth.optional_principal, {"401"}),  # a token sent must be a good one
    ],
)
def test_routes_that_check_the_caller_document_the_refusals(document, guard, statuses):
    guarded = [route for route in _gateway_routes() if _depends_on(route, guard)]
    assert guarded
    for route in guarded:
        if route.path_format.endswith("/{rest}"):
            continue  # documented as the routes behind it (the next test)
        for method in route.methods:
            answers = document["paths"][route.path_format][method.lower()]["responses"]
            assert statuses <= answers.keys(), (method, route.path)


def _inlined(document: Document, schema: Any) -> Any:
    """`schema` with each reference replaced by what it names, titles left out (FastAPI names
    a list's schema after the handler)."""
    if isinstance(schema, list):
        return [_inlined(document, item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return _inlined(document, document["components"]["schemas"][name])
    return {key: _inlined(document, value) for key, value in schema.items() if key != "title"}


def _bodies(document: Document, operation: Document) -> tuple[str, Any, Any]:
    """The operation's success status, and the JSON schemas of what it takes and of what it
    answers then (None: the document does not say)."""
    success = min(status for status in operation["responses"] if status.startswith("2"))
    taken = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    given = operation["responses"][success].get("content", {}).get("application/json", {})
    return (
        success,
        _inlined(document, taken.get("schema")) or None,
        _inlined(document, given.get("schema")) or None,
    )


def test_forwarded_bodies_are_described_as_the_service_behind_describes_them(
    document, services_documents
):
    described = 0
    for path, method, operation in operations(document):
        owners = [d for d in services_documents.values() if method in d["paths"].get(path, {})]
        if not owners or operation["operationId"] in COMPOSED:
            continue  # the gateway's own, or a catch-all the service routes further
        status, taken, given = _bodies(document, operation)
        its_status, it_takes, it_gives = _bodies(owners[0], owners[0]["paths"][path][method])
        assert status == its_status, (method, path)
        # Where the gateway says nothing, the model is not in the service's schemas module.
        assert taken in (None, it_takes), (method, path)
        assert given in (None, it_gives), (method, path)
        described += bool(taken or given)
    assert described >= 31  # as many as the gateway described when this test was written


def test_routes_behind_a_catch_all_are_documented_one_by_one_as_their_service_has_them(
    document, services_documents
):
    assert not [path for path in document["paths"] if "{rest}" in path]
    public = {
        (path, method)
        for d in services_documents.values()
        for path, item in d["paths"].items()
        for method in item
        if not path.startswith("/webhooks/")  # the providers' and shops', routed by source
    }
    documented = {(path, method) for path, method, _ in operations(document)}
    assert public - documented == set()
    answers = {(p, m): set(o["responses"]) for p, m, o in operations(document)}
    assert {"401", "403"} <= answers[("/api/live/chat/bans", "post")]  # moderators
    assert {"401", "403"} <= answers[("/api/catalog/products/{product_id}", "put")]  # admins
    clicked = answers[("/api/live/streams/{stream_id}/products/{product_id}/click", "post")]
    assert "401" in clicked and "403" not in clicked  # anyone; a token sent must be good
    assert "413" not in answers[("/api/live/chat/{message_id}/pin", "delete")]  # no body


def test_forwarded_routes_document_the_query_parameters_of_the_service(
    document, services_documents
):
    for path, method, operation in operations(document):
        for owner in services_documents.values():
            theirs = owner["paths"].get(path, {}).get(method, {}).get("parameters", [])
            ours = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
            assert {(p["name"], p["in"]) for p in theirs} <= ours, (method, path)
    lists = {p: o for p, m, o in operations(document) if m == "get"}
    for path in ("/api/live/streams", "/api/live/chat", "/api/catalog/products"):
        names = {p["name"] for p in lists[path]["parameters"]}
        assert {"cursor", "limit"} <= names, path
        answer = lists[path]["responses"]["200"]["content"]["application/json"]["schema"]
        page = _inlined(document, answer)
        assert {"items", "next_cursor"} <= set(page["properties"]), path
