"""The chassis' input guard and error answers, on a small app built like every service's."""

import contextlib
import json
import logging
import unicodedata
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from chassis.errors import error_response, safe
from chassis.inputs import first_refused, json_errors, query_errors, refused
from chassis.web import create_web_app
from tests.support.text import TEXT, spoiled


@given(TEXT)
def test_text_with_line_breaks_emoji_and_any_script_is_accepted(text: str) -> None:
    assert first_refused(text, multiline=True) is None
    assert list(json_errors({"message": text})) == []


@given(spoiled())
def test_a_surrogate_or_control_character_anywhere_in_text_is_found(text: str) -> None:
    char = first_refused(text, multiline=True)
    assert char is not None
    assert unicodedata.category(char) in ("Cc", "Cs")


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_line_breaks_are_text_in_values_but_not_in_names_or_queries(char: str) -> None:
    assert not refused(char, multiline=True)
    assert refused(char, multiline=False)
    [key_error] = json_errors({f"a{char}b": 1})
    assert key_error["loc"] == ["body", f"a\\u{ord(char):04x}b"]
    [query_error] = query_errors(f"session_id=a{char}b".encode())
    assert query_error["loc"] == ["query", "session_id"]


@given(
    path=st.lists(st.one_of(st.integers(0, 3), st.sampled_from(["items", "name"])), max_size=4),
    text=spoiled(),
)
def test_the_error_names_the_field_holding_the_text(path: list, text: str) -> None:
    document: object = text
    for step in reversed(path):
        document = [None] * step + [document] if isinstance(step, int) else {step: document}
    errors = list(json_errors(document))
    assert [error["loc"] for error in errors] == [["body", *path]]
    json.dumps(errors).encode()  # the error itself never holds the character


@given(st.one_of(spoiled(), st.binary(max_size=20)))
def test_an_error_answer_renders_whatever_it_echoes(value: object) -> None:
    response = error_response(422, [{"loc": ["body", "title"], "input": value}])
    echoed = json.loads(response.body)["detail"][0]["input"]
    assert isinstance(echoed, str)
    assert safe(echoed) == echoed


# --- through an app built by create_web_app ------------------------------------------------------


class Live(BaseModel):
    title: str = Field(max_length=10)
    tags: list[str] = []


def _app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_web_app(service="test", lifespan=lifespan, max_body_bytes=10_000)

    @app.post("/lives")
    async def create(live: Live) -> Live:
        return live

    @app.get("/lives/{name}")
    async def read(name: str, session_id: str | None = None) -> dict:
        return {"name": name}

    @app.post("/webhooks/shop")
    async def webhook(live: Live) -> dict:
        return {"ok": True}  # exempt from the guard: validation alone answers

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def post(client: httpx.AsyncClient, path: str, raw: str) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return await client.post(path, content=raw.encode(), headers=headers)


async def test_a_lone_surrogate_in_a_body_is_422_naming_the_field(client, caplog) -> None:
    answer = await post(client, "/lives", r'{"title": "ok", "tags": ["a", "LIVE\ud800"]}')
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "type": "string_invalid_character",
            "loc": ["body", "tags", 1],
            "msg": "a lone UTF-16 surrogate (U+D800) is not text",
        }
    ]
    assert "Traceback" not in caplog.text


async def test_a_validation_error_echoing_a_surrogate_still_answers_422(client, caplog) -> None:
    # Past the guard (a webhook path), FastAPI's own validation error holds the surrogate.
    answer = await post(client, "/webhooks/shop", '{"title": "far too long\\ud800"}')
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["input"] == "far too long\\ud800"
    assert "Traceback" not in caplog.text


async def test_raw_surrogate_bytes_are_refused_like_escaped_ones(client) -> None:
    raw = b'{"title": "a\xed\xa0\x80"}'
    answer = await client.post("/lives", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "title"]


@pytest.mark.parametrize("escape", ["\\b", "\\f", "\\u0007", "\\u007f", "\\u0085"])
async def test_every_escape_writing_a_control_character_is_refused(client, escape) -> None:
    answer = await post(client, "/lives", f'{{"title": "a{escape}b"}}')
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "title"]


async def test_newlines_and_tabs_in_text_pass_the_guard(client) -> None:
    answer = await post(client, "/lives", r'{"title": "a\nb\tc", "tags": ["x\r\ny"]}')
    assert answer.status_code == 200
    assert answer.json()["title"] == "a\nb\tc"


async def test_a_control_character_in_a_query_is_422_naming_the_parameter(client) -> None:
    answer = await client.get("/lives/x", params={"session_id": "abc\x06"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "session_id"]


async def test_a_control_character_in_the_path_is_404_with_one_short_log_line(
    client, caplog
) -> None:
    with caplog.at_level(logging.INFO, logger="chassis.inputs"):
        answer = await client.get("/lives/%06")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
    lines = [record for record in caplog.records if record.name == "chassis.inputs"]
    assert len(lines) == 1 and "\\u0006" in lines[0].getMessage()
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize("depth", [900, 5000])
async def test_deeply_nested_json_is_a_client_error_not_a_500(client, depth: int) -> None:
    raw = "[" * depth + '"\\u0000"' + "]" * depth
    answer = await post(client, "/lives", '{"title": "x", "tags": ' + raw + "}")
    assert 400 <= answer.status_code < 500, answer.text


async def test_a_client_leaving_mid_body_gets_no_answer_and_logs_no_traceback(caplog) -> None:
    app = _app()
    sent: list[dict] = []
    messages = iter(
        [
            {"type": "http.request", "body": b'{"title": "half', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/lives", "raw_path": b"/lives",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "scheme": "http", "server": ("test", 80), "client": ("test", 1), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}  # fmt: skip
    await app(scope, receive, send)
    assert sent == []
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_bug_is_500_logged_with_its_traceback_once(client, caplog) -> None:
    answer = await client.get("/bug")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error"}
    assert [record.exc_info is not None for record in caplog.records] == [True]


@settings(max_examples=50, deadline=None)
@given(title=spoiled(), tags=st.lists(TEXT, max_size=3))
async def test_no_text_ever_gets_a_5xx(title: str, tags: list[str]) -> None:
    transport = httpx.ASGITransport(_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        raw = json.dumps({"title": title, "tags": tags}, ensure_ascii=True)
        answer = await post(client, "/lives", raw)
    assert answer.status_code == 422
    assert ["body", "title"] in [error["loc"] for error in answer.json()["detail"]]
