"""What the limits kept in Redis share (chassis.limits), without Redis."""

from chassis.limits import retry_after_s


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_s(1) == 1
    assert retry_after_s(1_000) == 1
    assert retry_after_s(1_001) == 2
    assert retry_after_s(0) == 1
