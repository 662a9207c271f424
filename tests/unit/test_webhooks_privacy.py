"""Every event has its personal data decided for outbound webhooks (services/webhooks/privacy.py),
each named field exists, and a field that names a person is never left in by mistake."""

from uuid import uuid4

import pytest
from pydantic import BaseModel

from contracts import Envelope
from contracts.registry import EVENTS, _load_all
from services.webhooks.privacy import PERSONAL_FIELDS, for_endpoint
from services.webhooks.schemas import TEST_EVENT

# Field names that say a person (or their browser, or their cart) wherever they appear.
PERSONAL_NAMES = {"session_id", "user_id", "cart_id", "display_name", "email"}


def _registered() -> dict[tuple[str, int], type[BaseModel]]:
    _load_all()
    return {key: spec.model for key, spec in EVENTS.items()}


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, field in model.model_fields.items():
        paths.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _paths(annotation, f"{prefix}{name}.")
    return paths


def test_every_event_is_decided_and_nothing_else():
    assert set(PERSONAL_FIELDS) - {(TEST_EVENT, 1)} == set(_registered())


@pytest.mark.parametrize("key", sorted(_registered()))
def test_the_fields_removed_exist_and_every_personal_field_is_removed(key):
    paths = _paths(_registered()[key])
    removed = set(PERSONAL_FIELDS[key])
    assert removed <= paths, f"{key}: no such field {sorted(removed - paths)}"
    left_in = {p for p in paths if p.rsplit(".", 1)[-1] in PERSONAL_NAMES} - removed
    assert not left_in, f"{key}: decide about {sorted(left_in)}"


def _envelope(event_type: str, data: dict) -> Envelope:
    return Envelope(
        id=uuid4(), type=event_type, version=1, occurred_at="2026-12-03T10:00:00Z",
        stream_id=uuid4(), producer="test", data=data,
    )  # fmt: skip


def test_an_undecided_event_goes_only_to_endpoints_allowed_personal_data():
    envelope = _envelope("poll.voted", {"user_id": "u-1", "choice": 2})
    assert for_endpoint(envelope, allow_personal_data=False) is None
    assert for_endpoint(envelope, allow_personal_data=True) == envelope.model_dump(mode="json")


def test_nested_fields_are_removed_and_the_rest_kept():
    data = {"message": {"id": str(uuid4()), "user_id": "u", "display_name": "Zoé", "message": "hi"}}
    sent = for_endpoint(_envelope("chat.pinned", data), allow_personal_data=False)
    assert sent is not None and sent["data"] == {
        "message": {"id": data["message"]["id"], "message": "hi"}
    }
