"""What issue 11 found from outside, through the gateway: text no service can store and paths
naming nothing are the client's mistake (4xx naming the field), never a 500 or a traceback."""

from pathlib import Path
from uuid import uuid4

import pytest

from tests.conftest import auth, eventually
from vitrine.system import System

JSON = {"content-type": "application/json"}
SURROGATE = "\\ud800"  # as JSON writes it: a lone UTF-16 surrogate once decoded


def logged(system: System) -> dict[Path, int]:
    return {path: path.stat().st_size for path in system.log_dir.glob("*.log")}


def tracebacks_since(before: dict[Path, int]) -> list[str]:
    found = []
    for path, size in before.items():
        with path.open(errors="replace") as log:
            log.seek(size)
            if "Traceback" in (text := log.read()):
                found.append(f"{path.name}: {text[text.index('Traceback') :][:2000]}")
    return found


@pytest.fixture
async def live_id(gateway, tokens) -> str:
    answer = await gateway.post(
        "/api/live/streams", json={"title": "Bad input"}, headers=auth(tokens["admin"])
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_lone_surrogates_where_the_issue_found_500s_are_422_naming_the_field(
    gateway, system, tokens, live_id
) -> None:
    before = logged(system)
    admin, user = auth(tokens["admin"]), auth(tokens["user"])
    session = "a" * 20
    cases = [
        ("POST", "/api/live/chat", f'{{"stream_id": "{live_id}", "message": "hi{SURROGATE}"}}',
         user, ["body", "message"]),
        ("PUT", f"/api/live/streams/{live_id}", f'{{"title": "Soldes{SURROGATE}"}}',
         admin, ["body", "title"]),
        ("POST", "/api/catalog/products",
         f'{{"sku": "S-{uuid4().hex[:8]}", "name": "Scarf{SURROGATE}", "price": "9.00"}}',
         admin, ["body", "name"]),
        ("POST", "/api/live/cart/items",
         f'{{"stream_id": "{live_id}", "product_id": "{uuid4()}", "quantity": 1, '
         f'"session_id": "{session}{SURROGATE}"}}', {}, ["body", "session_id"]),
        ("PUT", f"/api/live/streams/{live_id}/offer", f'{{"code": "LIVE{SURROGATE}"}}',
         admin, ["body", "code"]),
        ("POST", "/api/live/chat", f'{{"stream_id": "{live_id}", "message": "a\\u0007b"}}',
         user, ["body", "message"]),
    ]  # fmt: skip
    for method, path, raw, headers, loc in cases:
        answer = await gateway.request(method, path, content=raw, headers={**headers, **JSON})
        assert answer.status_code == 422, (path, answer.text)
        assert loc in [error["loc"] for error in answer.json()["detail"]], (path, answer.text)
    assert tracebacks_since(before) == []


async def test_a_control_character_in_a_proxied_path_is_404_without_a_traceback(
    gateway, system
) -> None:
    before = logged(system)
    for path in ("/api/live/chat/%06", "/api/catalog/%00products", "/api/live/streams/%1b"):
        answer = await gateway.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json() == {"detail": "Not Found"}
    answer = await gateway.get("/api/live/chat", params={"stream_id": "\x06"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "stream_id"]
    assert tracebacks_since(before) == []


async def test_line_breaks_in_a_chat_message_are_text(gateway, tokens, live_id) -> None:
    async def posted() -> dict | None:
        answer = await gateway.post(
            "/api/live/chat",
            json={"stream_id": live_id, "message": "first line\nsecond line"},
            headers=auth(tokens["user"]),
        )
        return answer.json() if answer.status_code == 201 else None  # chat learns of the live

    message = await eventually(posted)
    assert message["message"] == "first line\nsecond line"
