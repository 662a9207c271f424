"""Every text field of every service's request models, as an admin would fill it (hypothesis):
text with a lone surrogate or a control character is 422 naming the field; any other text (line
breaks, emoji, any script, too long) is never answered with a 5xx."""

import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth
from tests.support.text import TEXT, spoiled
from vitrine.services import spec

SERVICES = ("streams", "products", "chat", "analytics", "notifications", "webhooks")
PREFIX = "text_"  # schemas of their own: what these requests create stays here
Operation = tuple[str, str, str, dict[str, Any]]  # service, method, path, JSON body schema


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with `$ref` and `Optional` (anyOf with null) unfolded."""
    while True:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _text_fields(schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    properties = _resolve(schema, components).get("properties", {})
    return [
        name
        for name, prop in properties.items()
        if _resolve(prop, components).get("type") == "string"
    ]


def _operations() -> list[Operation]:
    found = []
    for service in SERVICES:
        chosen = spec(service)
        document = chosen.create_app(chosen.settings()).openapi()
        components = document.get("components", {}).get("schemas", {})
        for path, item in document["paths"].items():
            for method, operation in item.items():
                content = operation.get("requestBody", {}).get("content", {})
                body = content.get("application/json", {}).get("schema")
                if path.startswith("/webhooks/"):
                    continue  # their senders' bodies are checked by the routes themselves
                if body is not None and _text_fields(body, components):
                    found.append((service, method.upper(), path, {**body, "$defs": components}))
    return found


OPERATIONS = _operations()


def _plausible(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A value the field would accept, so the text under test reaches further than validation."""
    schema = _resolve(schema, components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid4())
        if schema.get("format") == "date-time":
            return (datetime.now(UTC) + timedelta(days=1)).isoformat()
        if schema.get("format") == "uri":
            return "https://shop.example/item"
        return "x" * max(schema.get("minLength", 8), 8)
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return {}


@st.composite
def body(draw: st.DrawFn, schema: dict[str, Any], text: st.SearchStrategy) -> tuple[str, dict]:
    """A body with every required field plausible and one text field drawn from `text`."""
    components = schema["$defs"]
    model = _resolve(schema, components)
    field = draw(st.sampled_from(_text_fields(schema, components)))
    properties = model.get("properties", {})
    required = model.get("required", [])
    document = {name: _plausible(properties[name], components) for name in required}
    document[field] = draw(text)
    return field, document


def _path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid4()), path)


@pytest.fixture(scope="module")
async def clients(env: dict, tokens: dict[str, str]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for service in SERVICES:
            chosen = spec(service)
            settings_ = chosen.settings(**{**env, "db_schema_prefix": PREFIX})  # type: ignore[call-arg]
            if chosen.migrate is not None:
                await chosen.migrate(settings_)
            app = chosen.create_app(settings_)
            manager = await stack.enter_async_context(
                LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
            )
            clients[service] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(manager.app, raise_app_exceptions=False),
                    base_url=f"http://{service}",
                    headers=auth(tokens["admin"]),
                )
            )
        yield clients


def _raw(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=True).encode()  # `\ud800` escapes, as clients send


CASES = [pytest.param(op, id=f"{op[1]} {op[0]}{op[2]}") for op in OPERATIONS]
SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("operation", CASES)
@SETTINGS
@given(data=st.data())
async def test_spoiled_text_in_any_field_is_422_naming_it(clients, operation, data) -> None:
    service, method, path, schema = operation
    field, document = data.draw(body(schema, spoiled()))
    answer = await clients[service].request(
        method, _path(path), content=_raw(document), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert ["body", field] in [error["loc"] for error in answer.json()["detail"]]


@pytest.mark.parametrize("operation", CASES)
@SETTINGS
@given(data=st.data())
async def test_any_other_text_in_any_field_never_gets_a_5xx(clients, operation, data) -> None:
    service, method, path, schema = operation
    _, document = data.draw(body(schema, st.one_of(TEXT, st.text(min_size=300, max_size=3000))))
    answer = await clients[service].request(
        method, _path(path), content=_raw(document), headers={"content-type": "application/json"}
    )
    assert answer.status_code < 500, answer.text


def test_every_service_has_text_fields_under_test() -> None:
    assert {operation[0] for operation in OPERATIONS} >= {"streams", "products", "chat"}
