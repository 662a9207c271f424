from datetime import UTC, datetime

import pytest

from chassis.pages import InvalidCursor, decode_cursor, encode_cursor


def test_a_cursor_round_trips_its_position_and_shows_no_plain_number() -> None:
    moment = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    cursor = encode_cursor(12345, 1.5, float("inf"), moment, "order-7")
    assert "12345" not in cursor and "=" not in cursor
    assert decode_cursor(cursor, int, float, float, datetime, str) == [
        12345, 1.5, float("inf"), moment, "order-7",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cursor", "kinds"),
    [
        ("", (int,)),
        ("garbage!", (int,)),
        (encode_cursor(1, 2), (int,)),  # another list's position
        (encode_cursor("1"), (int,)),
        (encode_cursor(True), (int,)),
        (encode_cursor(1), (float,)),
        (encode_cursor("2026-12-03T08:30:00"), (datetime,)),  # no time zone
        (encode_cursor("yesterday"), (datetime,)),
        ("eyJhIjogMX0", (int,)),  # {"a": 1}
    ],
)
def test_a_cursor_not_handed_out_is_refused(cursor: str, kinds: tuple[type, ...]) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, *kinds)
