"""How a durable consumer's failing events come back, and what does not count as a failure.

A failing event comes back later each time (`Redelivery.delays_s`, a nak with a growing delay)
and, once its handler has raised on `max_deliver` deliveries, is parked as a dead letter
(chassis.dead_letters) instead of being retried for ever. Only a handler that raised parks an
event: the count is checked after the handler, never before, so events that shared a fetch with
one that kills the process are not parked for deliveries in which they never ran. The flip side,
a known limit: an event that kills the process on every delivery (it never raises) is redelivered
until the cause is fixed — its restarts show it. The durable's own `max_deliver` stays unlimited:
a server-side bound would have JetStream drop the event silently wherever our count did not run
first (an older pod during a rollback). The delays are naks, not JetStream's `backoff` list: that
list would replace the 30 s `ack_wait` by its first, short, value, and redeliver a slow event
while it is still being handled.

An outage — the database or a connection away (`is_outage`: connection-class errors only) — is
not the event's fault: the event is nak'd with a capped exponential delay (`outage_delay_s`, 1 s
doubling to 30 s) and never parked, however often it comes back. Nothing waits on it meanwhile:
the consumer goes on with the next events, so an error wrongly taken for an outage costs retries,
not a stalled consumer. Deliveries spent on outages are not counted against the event (as far as
this process saw them), so an event that fails for its own reason once the database is back still
gets its `max_deliver` tries.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy.exc
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

# The SQLSTATEs chassis.errors answers 503 for (the database cannot serve now, the query is not
# wrong): one classification for the API and the consumers.
from chassis.errors import _BUSY_STATES, _UNAVAILABLE_STATES, DatabaseUnavailable
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

UNLIMITED = -1  # JetStream's max_deliver: never drop an event, our count parks it

_OUTAGE_STATES = _UNAVAILABLE_STATES + _BUSY_STATES  # 08…, 28…, 3D000, 53…, 57P01-03
_OUTAGES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,  # chassis.db: no connection could be made (refused, timed out)
    sqlalchemy.exc.TimeoutError,  # no free connection in the pool
    ConnectionRefusedError,
    ConnectionResetError,
    BrokenPipeError,
)
MAX_OUTAGE_EXPONENT = 30  # 2**30 s is past any cap: the doubling stops there, never overflows


def _sqlstate(error: BaseException) -> str:
    """The SQLSTATE an asyncpg error (or SQLAlchemy's adapted driver error) carries, or ''."""
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) else ""


def is_outage(error: BaseException) -> bool:
    """Whether `error` says a dependency is away — a connection refused, reset, lost or never
    made, the pool out of connections, the database shutting down, starting or full of clients —
    rather than something wrong with the event or the handler. Only connection-class errors: a
    plain TimeoutError, an InterfaceError for a query mistake, a generic OSError (SMTP, SSL, a
    file) are the event's failures. Follows the causes (SQLAlchemy's `orig`, `__cause__`, and
    `__context__` unless suppressed, as by `raise … from None`)."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if _sqlstate(current).startswith(_OUTAGE_STATES):
            return True  # asyncpg's ConnectionDoesNotExist/ConnectionFailure (08), 53300, 57P0x
        # SQLAlchemy keeps the driver's error in `orig`, which keeps asyncpg's as its cause.
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            todo.append(orig)
        if current.__cause__ is not None:
            todo.append(current.__cause__)
        if current.__context__ is not None and not current.__suppress_context__:
            todo.append(current.__context__)
    return False


@dataclass(frozen=True)
class Redelivery:
    """When a failed event comes back: after `delays_s[n-1]` following its n-th failure (the
    last delay repeats), at most `max_deliver` failing deliveries in all, then it is a dead
    letter. During an outage: after `outage_first_s`, doubling up to `outage_max_s`, for ever."""

    delays_s: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    max_deliver: int = 10
    outage_first_s: float = 1.0
    outage_max_s: float = 30.0

    @classmethod
    def of(cls, settings: ServiceSettings) -> "Redelivery":
        return cls(settings.consumer_retry_delays_s, settings.consumer_max_deliver)

    def delay_after(self, deliveries: int) -> float:
        return self.delays_s[min(max(deliveries, 1), len(self.delays_s)) - 1]

    def outage_delay_s(self, outages: int) -> float:
        """The pause before the next try of an event that met an outage `outages` times in a
        row: `outage_first_s`, doubling, at most `outage_max_s`."""
        exponent = min(max(outages - 1, 0), MAX_OUTAGE_EXPONENT)
        return min(self.outage_first_s * 2.0**exponent, self.outage_max_s)


class OutageTally:
    """How many deliveries of each event (by stream sequence) this process nak'd for an outage,
    so that they are not counted as the event's failures. Bounded: the oldest entries go first
    (an event redelivered to another replica, or after a restart, is counted from
    `num_delivered` alone — parked sooner, never later)."""

    def __init__(self, bound: int) -> None:
        self.bound = max(bound, 1)
        self._counts: OrderedDict[int, int] = OrderedDict()

    @staticmethod
    def key(message: Msg) -> int | None:
        sequence = message.metadata.sequence
        return sequence.stream if sequence is not None else None

    def add(self, message: Msg) -> int:
        """Count one more outage for the message's event; returns its count so far."""
        if (key := self.key(message)) is None:
            return 1
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self.bound:
            self._counts.popitem(last=False)
        return count

    def failures(self, message: Msg) -> int:
        """The event's deliveries that were not spent on an outage (this one included)."""
        deliveries = message.metadata.num_delivered or 1
        key = self.key(message)
        return max(deliveries - (self._counts.get(key, 0) if key is not None else 0), 1)

    def forget(self, message: Msg) -> None:
        if (key := self.key(message)) is not None:
            self._counts.pop(key, None)

    def __len__(self) -> int:
        return len(self._counts)


def consumer_config(*, ack_wait_s: float, max_ack_pending: int) -> ConsumerConfig:
    """A durable's config (pull_subscribe adds its name and filter when it creates it)."""
    return ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=UNLIMITED,
        max_ack_pending=max_ack_pending,
    )


async def update_existing(
    js: JetStreamContext, *, stream: str, durable: str, wanted: ConsumerConfig
) -> None:
    """Bring a durable created by an older version (another `ack_wait`, a server-side
    `max_deliver`) to the current config, keeping its position. Only fields JetStream lets an
    existing consumer change are changed (its filter and delivery policy stay); if the server
    refuses, the old settings stay (logged)."""
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return  # pull_subscribe creates it with the current config
    current = info.config
    # JetStream reports an unlimited max_deliver as -1 (or leaves it out).
    current_max_deliver = current.max_deliver if current.max_deliver else UNLIMITED
    if (current_max_deliver, current.ack_wait, current.max_ack_pending) == (
        wanted.max_deliver, wanted.ack_wait, wanted.max_ack_pending,
    ):  # fmt: skip
        return
    updated = current.evolve(
        max_deliver=wanted.max_deliver,
        ack_wait=wanted.ack_wait,
        max_ack_pending=wanted.max_ack_pending,
    )
    try:
        await js.add_consumer(stream, config=updated)  # create-or-update on the same name
        log.info(
            "consumer %s updated: max_deliver %s (was %s), ack_wait %ss, max_ack_pending %s",
            durable, wanted.max_deliver, current.max_deliver, wanted.ack_wait,
            wanted.max_ack_pending,
        )  # fmt: skip
    except Exception as error:
        log.warning("consumer %s keeps its old config: %s", durable, error)
