"""The rules of a live, without any I/O."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from contracts.streams import StreamStatus
from services.streams import domain, refusals
from services.streams.domain import InvalidSchedule, InvalidTransition

SCHEDULED, LIVE, ENDED = StreamStatus.SCHEDULED, StreamStatus.LIVE, StreamStatus.ENDED


def test_a_scheduled_live_starts_and_goes_on_air() -> None:
    assert domain.start(SCHEDULED) is LIVE


def test_a_live_on_air_ends() -> None:
    assert domain.end(LIVE) is ENDED


@pytest.mark.parametrize("status", [LIVE, ENDED])
def test_only_a_scheduled_live_can_start(status: StreamStatus) -> None:
    with pytest.raises(InvalidTransition) as raised:
        domain.start(status)
    assert raised.value.status is status
    assert raised.value.action == "start"


@pytest.mark.parametrize("status", [SCHEDULED, ENDED])
def test_only_a_live_on_air_can_end(status: StreamStatus) -> None:
    with pytest.raises(InvalidTransition):
        domain.end(status)


def test_the_whole_life_of_a_live_is_scheduled_live_ended() -> None:
    assert domain.end(domain.start(SCHEDULED)) is ENDED


def test_every_transition_is_either_allowed_or_refused() -> None:
    allowed = {(SCHEDULED, "start"): LIVE, (LIVE, "end"): ENDED}
    for status in StreamStatus:
        for action, move in (("start", domain.start), ("end", domain.end)):
            if (status, action) in allowed:
                assert move(status) is allowed[(status, action)]
            else:
                with pytest.raises(InvalidTransition):
                    move(status)


def test_a_live_on_air_cannot_be_deleted() -> None:
    with pytest.raises(InvalidTransition):
        domain.ensure_deletable(LIVE)
    domain.ensure_deletable(SCHEDULED)
    domain.ensure_deletable(ENDED)


def test_an_ended_live_gets_no_new_key() -> None:
    with pytest.raises(InvalidTransition):
        domain.ensure_key_rotatable(ENDED)
    domain.ensure_key_rotatable(SCHEDULED)
    domain.ensure_key_rotatable(LIVE)


def test_invalid_transition_says_what_was_refused() -> None:
    assert str(InvalidTransition("start", ENDED)) == "cannot start a live that is ended"


def test_stream_keys_carry_at_least_128_bits_of_randomness() -> None:
    key = domain.new_stream_key()
    assert key.startswith("live_")
    random_part = key.removeprefix("live_")
    # url-safe base64: 6 bits per character.
    assert len(random_part) * 6 >= 128
    assert len(set(random_part)) > 10
    assert all(c.isalnum() or c in "-_" for c in random_part)


def test_stream_keys_are_unique() -> None:
    keys = {domain.new_stream_key() for _ in range(10_000)}
    assert len(keys) == 10_000


def test_playback_ids_are_unique_unguessable_and_look_nothing_like_a_key() -> None:
    ids = {domain.new_playback_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) * 6 >= 96 and not i.startswith("live_") for i in ids)


def test_a_key_hashes_to_its_sha256_hex_digest() -> None:
    key = domain.new_stream_key()
    digest = domain.hash_stream_key(key)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert len(digest) == 64
    assert domain.hash_stream_key(key) == digest
    assert domain.hash_stream_key(key + "x") != digest
    assert key not in digest


NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("offset_s", [None, 0, -59, 3600 * 24 * 365])
def test_a_live_is_scheduled_from_now_on(offset_s: float | None) -> None:
    when = None if offset_s is None else NOW + timedelta(seconds=offset_s)
    domain.check_schedule(when, now=NOW)


@pytest.mark.parametrize("offset_s", [-61, -3600, -3600 * 24 * 365])
def test_a_live_cannot_be_scheduled_in_the_past(offset_s: float) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        domain.check_schedule(NOW + timedelta(seconds=offset_s), now=NOW)
    assert raised.value.field == "scheduled_at" and "past" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "shown"),
    [("live_" + "a" * 39 + "Zx_9", "Zx_9"), ("short", ""), ("live_\x1b[31mredkey\n", "key?")],
)
def test_a_refused_key_is_shown_by_its_last_four_characters_at_most(key: str, shown: str) -> None:
    # A short one could be told whole; a control character never reaches a log line.
    assert refusals.key_tail(key) == shown
