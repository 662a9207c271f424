"""The chat's rules without I/O: message text, blocked words, the flood bucket, the cursor."""

import pytest
from pydantic import ValidationError

from services.chat import domain
from services.chat.domain import Bucket, InvalidMessage, take_token
from services.chat.models import BanCreate, ChatOptionsUpdate, ChatPost

STREAM = "7d1e6a55-0f0b-4bb0-9d38-3c7cbb0a3b11"

# --- message text --------------------------------------------------------------------------------


def test_a_message_is_trimmed_and_otherwise_kept_exactly() -> None:
    assert domain.clean_message("  hello  ") == "hello"
    assert domain.clean_message("<img src=x onerror=alert(1)>") == "<img src=x onerror=alert(1)>"
    assert domain.clean_message("&lt;b&gt; 'quotes' \"double\"") == "&lt;b&gt; 'quotes' \"double\""
    assert domain.clean_message("émoji 🎉 日本語") == "émoji 🎉 日本語"


def test_newlines_are_allowed_and_crlf_becomes_lf() -> None:
    assert domain.clean_message("line one\nline two") == "line one\nline two"
    assert domain.clean_message("line one\r\nline two") == "line one\nline two"


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "\u3000"])
def test_an_empty_message_is_refused(text: str) -> None:
    with pytest.raises(InvalidMessage, match="empty"):
        domain.clean_message(text)


def test_500_characters_pass_and_501_do_not() -> None:
    assert domain.clean_message("é" * 500) == "é" * 500
    assert domain.clean_message("  " + "a" * 500 + "  ") == "a" * 500
    with pytest.raises(InvalidMessage, match="500"):
        domain.clean_message("a" * 501)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\t", "\x1b", "\r", "\x7f", "\x85", "\x9b"])
def test_control_characters_other_than_newline_are_refused(char: str) -> None:
    with pytest.raises(InvalidMessage, match="control character"):
        domain.clean_message(f"hello{char}world")


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidMessage):
        domain.clean_message("bad \ud800 text")


def test_the_post_schema_applies_the_text_rules() -> None:
    assert ChatPost(stream_id=STREAM, message="  hi ").message == "hi"  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="control character"):
        ChatPost(stream_id=STREAM, message="a\x00b")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ChatPost(stream_id=STREAM, message="x", extra=1)  # type: ignore[arg-type, call-arg]


# --- blocked words -------------------------------------------------------------------------------


def test_blocked_words_are_folded_and_deduplicated() -> None:
    assert domain.clean_blocked_words([" Spam ", "spam", "\uff26\uff32\uff25\uff25  money"]) == [
        "spam",
        "free money",
    ]
    with pytest.raises(ValueError, match="blank"):
        domain.clean_blocked_words(["  "])
    with pytest.raises(ValueError, match="at most"):
        domain.clean_blocked_words(["x" * 51])


def test_a_blocked_word_matches_whole_words_in_any_case() -> None:
    words = domain.clean_blocked_words(["spam", "free money"])
    assert domain.blocked_word_in("Buy SPAM now", words) == "spam"
    assert domain.blocked_word_in("spam!", words) == "spam"
    assert domain.blocked_word_in("get FREE\n  Money", words) == "free money"
    assert domain.blocked_word_in("\uff53\uff50\uff41\uff4d", words) == "spam"
    assert domain.blocked_word_in("spammer and antispam", words) is None
    assert domain.blocked_word_in("nothing to see", []) is None


def test_options_refuse_null_fields_and_an_empty_update() -> None:
    assert ChatOptionsUpdate(slow_mode_s=30).model_fields_set == {"slow_mode_s"}
    with pytest.raises(ValidationError, match="at least one"):
        ChatOptionsUpdate()
    with pytest.raises(ValidationError, match="cannot be null"):
        ChatOptionsUpdate(enabled=None)
    with pytest.raises(ValidationError):
        ChatOptionsUpdate(slow_mode_s=3601)


def test_a_ban_for_one_live_names_the_live() -> None:
    with pytest.raises(ValidationError, match="stream_id"):
        BanCreate(user_id="u", scope="live")  # type: ignore[arg-type]
    assert BanCreate(user_id="u", scope="shop").stream_id is None  # type: ignore[arg-type]


# --- flood bucket --------------------------------------------------------------------------------


def test_a_full_bucket_allows_a_burst_of_its_capacity_then_says_when_to_retry() -> None:
    bucket = None
    for _ in range(5):
        take = take_token(bucket, now_ms=1_000, capacity=5, refill_per_s=1.0)
        assert take.allowed
        bucket = take.bucket
    refused = take_token(bucket, now_ms=1_000, capacity=5, refill_per_s=1.0)
    assert not refused.allowed
    assert refused.retry_after_ms == 1_000


def test_the_bucket_refills_at_its_rate_and_never_past_its_capacity() -> None:
    empty = Bucket(tokens=0.0, at_ms=0)
    half = take_token(empty, now_ms=500, capacity=5, refill_per_s=1.0)
    assert not half.allowed
    assert half.retry_after_ms == 500
    assert take_token(empty, now_ms=1_000, capacity=5, refill_per_s=1.0).allowed
    later = take_token(empty, now_ms=60_000, capacity=5, refill_per_s=1.0)
    assert later.allowed
    assert later.bucket.tokens == 4.0
    fast = take_token(empty, now_ms=100, capacity=5, refill_per_s=10.0)
    assert fast.allowed


def test_a_clock_going_back_does_not_refill_the_bucket() -> None:
    take = take_token(Bucket(tokens=0.5, at_ms=10_000), now_ms=5_000, capacity=5, refill_per_s=1)
    assert not take.allowed
    assert take.retry_after_ms == 500


def test_slow_mode_waits_from_the_last_post() -> None:
    assert domain.slow_mode_wait_ms(last_post_ms=None, now_ms=5_000, slow_mode_s=10) == 0
    assert domain.slow_mode_wait_ms(last_post_ms=1_000, now_ms=5_000, slow_mode_s=0) == 0
    assert domain.slow_mode_wait_ms(last_post_ms=1_000, now_ms=5_000, slow_mode_s=10) == 6_000
    assert domain.slow_mode_wait_ms(last_post_ms=1_000, now_ms=11_000, slow_mode_s=10) == 0
