"""The rules of a live's chat, free of I/O: what a message may contain, blocked words, the flood
bucket's arithmetic and the history cursor."""

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MESSAGE_MAX = 500
BLOCKED_WORD_MAX = 50
BLOCKED_WORDS_MAX = 200
SLOW_MODE_MAX_S = 3600


class InvalidMessage(ValueError):
    """The text cannot be posted as it is (empty, too long, control characters)."""


def clean_message(text: str) -> str:
    """The text to store: trimmed, CRLF as LF; refused when empty, over `MESSAGE_MAX` characters,
    or holding control characters other than a newline (C0, DEL, C1) or lone surrogates.

    Nothing is escaped or interpreted: the client renders it as text."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InvalidMessage("the message is empty")
    if len(text) > MESSAGE_MAX:
        raise InvalidMessage(f"the message is over {MESSAGE_MAX} characters")
    for char in text:
        if char != "\n" and _is_refused(char):
            raise InvalidMessage(
                f"the message contains a control character (U+{ord(char):04X}); "
                "only plain text and newlines are allowed"
            )
    return text


def _is_refused(char: str) -> bool:
    # Cc: C0, DEL and C1 controls; Cs: lone surrogates, which no database can store.
    return unicodedata.category(char) in ("Cc", "Cs")


def _fold(text: str) -> str:
    """Compatibility forms and case folded, so fullwidth `SPAM` and `Spam` match `spam`."""
    return unicodedata.normalize("NFKC", text).casefold()


def clean_blocked_words(words: Iterable[str]) -> list[str]:
    """A live's blocked words: trimmed, folded, de-duplicated, in the order given."""
    cleaned: list[str] = []
    for word in words:
        folded = " ".join(_fold(word).split())
        if not folded:
            raise ValueError("a blocked word cannot be blank")
        if len(folded) > BLOCKED_WORD_MAX:
            raise ValueError(f"a blocked word is at most {BLOCKED_WORD_MAX} characters")
        if any(_is_refused(char) for char in folded):
            raise ValueError("a blocked word cannot contain control characters")
        if folded not in cleaned:
            cleaned.append(folded)
    if len(cleaned) > BLOCKED_WORDS_MAX:
        raise ValueError(f"at most {BLOCKED_WORDS_MAX} blocked words per live")
    return cleaned


def blocked_word_in(text: str, words: Iterable[str]) -> str | None:
    """The first blocked word (or phrase) the text contains as a whole word, if any."""
    folded = " ".join(_fold(text).split())
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return word
    return None


# --- flood protection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A user's token bucket: `tokens` left at `at_ms`."""

    tokens: float
    at_ms: int


@dataclass(frozen=True)
class Take:
    allowed: bool
    bucket: Bucket
    retry_after_ms: int  # 0 when allowed


def take_token(bucket: Bucket | None, *, now_ms: int, capacity: int, refill_per_s: float) -> Take:
    """Take one token (a message) from the bucket, refilled at `refill_per_s` up to `capacity`.

    `take_tokens` in `chassis/limits.py` runs this same arithmetic atomically inside Redis."""
    if bucket is None:
        tokens = float(capacity)
    else:
        elapsed_ms = max(0, now_ms - bucket.at_ms)
        tokens = min(float(capacity), bucket.tokens + elapsed_ms * refill_per_s / 1000)
    if tokens >= 1:
        return Take(True, Bucket(tokens - 1, now_ms), 0)
    retry_after_ms = math.ceil((1 - tokens) * 1000 / refill_per_s)
    return Take(False, Bucket(tokens, now_ms), retry_after_ms)


def slow_mode_wait_ms(*, last_post_ms: int | None, now_ms: int, slow_mode_s: int) -> int:
    """How long a user must still wait before posting again in slow mode (0: may post now)."""
    if slow_mode_s <= 0 or last_post_ms is None:
        return 0
    return max(0, last_post_ms + slow_mode_s * 1000 - now_ms)
