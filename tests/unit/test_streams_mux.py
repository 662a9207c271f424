"""Mux's webhook signature and payloads, without I/O."""

import pytest

from services.streams.providers.base import Kind
from services.streams.providers.mux import BadSignature, parse_webhook, verify_signature
from tests.support.mux import signature, webhook

BODY = webhook("video.live_stream.active", {"id": "ls-1"})


def test_a_body_signed_by_any_current_secret_within_the_tolerance_verifies() -> None:
    header = signature(BODY, "old", timestamp=1_000_000)
    verify_signature(header=header, body=BODY, secrets=["new", "old"], now=1_000_299)


@pytest.mark.parametrize(
    ("header", "now"),
    [
        (None, 1_000_000),
        ("", 1_000_000),
        ("v1=abc", 1_000_000),
        ("t=1000000,v1=" + "0" * 64, 1_000_000),
        (signature(BODY, "new", timestamp=1_000_000), 1_000_301),  # too old
        (signature(BODY, "new", timestamp=1_000_301), 1_000_000),  # from the future
        (signature(BODY, "other", timestamp=1_000_000), 1_000_000),
    ],
)
def test_anything_else_is_refused(header: str | None, now: int) -> None:
    with pytest.raises(BadSignature):
        verify_signature(header=header, body=BODY, secrets=["new"], now=now)


def test_no_secret_configured_verifies_nothing() -> None:
    header = signature(BODY, "", timestamp=1_000_000)
    with pytest.raises(BadSignature):
        verify_signature(header=header, body=BODY, secrets=[], now=1_000_000)


def test_webhooks_map_to_what_they_mean_for_a_live() -> None:
    kinds = {
        "video.live_stream.connected": Kind.CONNECTED,
        "video.live_stream.active": Kind.LIVE,
        "video.live_stream.disconnected": Kind.DISCONNECTED,
        "video.live_stream.idle": Kind.ENDED,
        "video.live_stream.updated": Kind.OTHER,
    }
    for name, kind in kinds.items():
        ref, event = parse_webhook(webhook(name, {"id": "ls-1"}, webhook_id="w"))
        assert (ref, event.kind, event.id) == ("ls-1", kind, "w")
    ready = webhook(
        "video.asset.ready",
        {"id": "a-1", "live_stream_id": "ls-1", "playback_ids": [{"id": "p", "policy": "public"}]},
    )
    ref, event = parse_webhook(ready)
    assert (ref, event.kind, event.replay_url) == (
        "ls-1",
        Kind.REPLAY_READY,
        "https://stream.mux.com/p.m3u8",
    )
    with pytest.raises(ValueError):
        parse_webhook(b'{"type": "video.live_stream.active"}')
