import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import (
    EVENTS,
    Envelope,
    event_type_of,
    new_envelope,
    payload_model,
    stream_id_of,
    subject_for,
)
from contracts.producers import PUBLISHES, may_publish
from contracts.snapshot import SCHEMA_DIR, current_schemas, render
from contracts.viewers import ViewersUpdated


def test_every_event_matches_its_committed_schema_snapshot():
    schemas = current_schemas()
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert committed == set(schemas), "run `python -m contracts.snapshot` after adding an event"
    drifted = [n for n, s in schemas.items() if (SCHEMA_DIR / n).read_text() != render(s)]
    assert not drifted, f"schemas changed without a new snapshot/version: {drifted}"


def test_every_event_named_in_the_design_is_registered():
    names = {name.split(".v")[0] for name in current_schemas() if name != "envelope.json"}
    assert names == {
        "stream.created", "stream.updated", "stream.started", "stream.ended", "stream.deleted",
        "stream.provider_state",
        "product.added", "product.updated", "product.removed", "product.featured",
        "product.unfeatured", "product.clicked", "cart.added",
        "offer.opened", "offer.updated", "offer.closed",
        "chat.posted", "chat.deleted", "chat.pinned", "chat.unpinned", "chat.user_banned",
        "viewers.updated", "viewer.joined", "viewer.left",
    }  # fmt: skip


def test_an_envelope_round_trips_and_validates_its_payload():
    stream_id = uuid.uuid4()
    envelope = new_envelope(
        ViewersUpdated(current=3, peak=5, total=9, unique=4), stream_id=stream_id, producer="t"
    )
    again = Envelope.model_validate_json(envelope.model_dump_json())
    assert again == envelope
    assert again.payload() == ViewersUpdated(current=3, peak=5, total=9, unique=4)


def test_an_envelope_with_a_payload_that_breaks_its_model_is_refused_on_read():
    envelope = Envelope(
        id=uuid.uuid4(), type="viewers.updated", version=1, occurred_at=datetime.now(UTC),
        stream_id=uuid.uuid4(), producer="t", data={"current": -1, "peak": 0, "total": 0,
        "unique": 0},
    )  # fmt: skip
    with pytest.raises(ValidationError):
        envelope.payload()


def test_an_unknown_event_version_is_refused():
    envelope = Envelope(
        id=uuid.uuid4(), type="viewers.updated", version=99, occurred_at=datetime.now(UTC),
        stream_id=uuid.uuid4(), producer="t", data={},
    )  # fmt: skip
    with pytest.raises(LookupError):
        envelope.payload()


def test_subjects_carry_the_stream_and_the_event_type():
    sid = uuid.uuid4()
    subject = subject_for(sid, "product.featured", root="t1.live")
    assert subject == f"t1.live.{sid}.product.featured"
    assert stream_id_of(subject, root="t1.live") == str(sid)
    assert event_type_of(subject, root="t1.live") == "product.featured"
    with pytest.raises(ValueError):
        stream_id_of("other.x.y", root="t1.live")


def test_the_committed_asyncapi_document_describes_every_event():
    from chassis.asyncapi import DOCUMENT, render

    assert DOCUMENT.read_text() == render(), "run `python -m chassis.asyncapi`"
    channels = json.loads(DOCUMENT.read_text())["channels"]
    assert len(channels) == 24
    assert any(c["address"] == "live.{stream_id}.product.featured" for c in channels.values())


def test_the_asyncapi_documents_are_valid_and_name_the_deployments_subjects(tmp_path):
    """The committed document and a deployment's own, checked by the official parser."""
    import shutil
    import subprocess
    from pathlib import Path

    from chassis.asyncapi import DOCUMENT, build

    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js: the AsyncAPI parser runs on it")
    ours = build(subject_root="shop1.live", jetstream_stream="SHOP1")
    assert "`SHOP1`" in ours["info"]["description"]
    channel = ours["channels"]["product.featured"]
    assert channel["address"] == "shop1.live.{stream_id}.product.featured"
    assert set(channel["parameters"]) == {"stream_id"}
    message = ours["components"]["messages"][channel["messages"]["v1"]["$ref"].rsplit("/", 1)[1]]
    assert message["headers"] == {"$ref": "#/components/schemas/Headers"}
    deployment = tmp_path / "asyncapi.json"
    deployment.write_text(json.dumps(ours))
    root = Path(__file__).resolve().parents[2]
    checked = subprocess.run(
        [node, str(root / "tests/support/asyncapi_check.mjs"), str(DOCUMENT), str(deployment)],
        cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_event_type_has_the_one_service_that_publishes_it() -> None:
    payload_model("stream.created", 1)  # every module's events registered
    for event_type, _ in EVENTS:
        publishers = [p for p in PUBLISHES if may_publish(p, event_type)]
        assert len(publishers) == 1, event_type
    assert not may_publish("products", "chat.posted") and not may_publish(None, "chat.posted")
