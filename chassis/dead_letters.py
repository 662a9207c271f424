"""Dead letters: the events a consumer gave up on, kept where an operator can see and replay them.

A consumer parks an event once its handler has raised on `max_deliver` deliveries (an outage never
counts: chassis.redelivery), or at once when it can never be handled (malformed, unknown version,
or the handler raised `PoisonEvent`). The event goes, byte for byte, into a JetStream stream of its
own (`<stream>_DEAD`, subjects `dead.<stream>.<consumer>`) with headers saying which consumer, what
went wrong and where it came from; a log line and the `vitrine_dead_letters_total` counter say it
happened. A stream rather than a table: every consumer of every service has one without a
migration, `nats stream view` shows it, and it is bounded by age and size (`DEAD_LETTER_MAX_BYTES`)
like the event stream. The error kept is the exception's own message (`describe`), never the SQL
parameters or the input it carries. Replaying runs the consumer's own handler on it again and
removes it, so the other consumers of the event — and the viewers' sockets — never see it twice:
`vitrine dead-letters replay <seq>` asks, over NATS request/reply (`replay.<stream>.<consumer>`),
whichever replica of that consumer's service is running.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RawStreamMsg, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from chassis.bus import DEAD_LETTER_MAX_BYTES, ensure_stream_config

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0  # a consumer parking the same event twice (crashed before term)
MAX_AGE_S = 30 * 24 * 3600.0
MAX_MESSAGES = 100_000
MAX_ERROR_CHARS = 500

DEAD_LETTERS = Counter(
    "vitrine_dead_letters_total",
    "Events a consumer gave up on and parked in the dead-letter stream",
    ["consumer", "reason"],
)


class Reason(StrEnum):
    FAILED = "failed"  # the handler raised on each of max_deliver deliveries
    POISON = "poison"  # malformed or unknown: no delivery could ever succeed


def describe(error: BaseException) -> str:
    """What a dead letter (and a log line) says of an error: its type and its own message,
    without the SQL parameters SQLAlchemy appends or the rejected input pydantic quotes — they
    may hold personal data — on one line and capped."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(event)'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        )
        text = f"ValidationError: {error.error_count()} error(s): {problems}"
    elif isinstance(error, sa_exc.StatementError) and error.orig is not None:
        # The driver's message, first line only: asyncpg's DETAIL line quotes the row's values.
        message = str(error.orig).splitlines()[0] if str(error.orig) else ""
        text = f"{type(error).__name__}: {message}"
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:MAX_ERROR_CHARS]


def dead_letter_stream(stream: str) -> str:
    return f"{stream}_DEAD"


def dead_letter_subject(stream: str, consumer: str) -> str:
    return f"dead.{stream}.{consumer}"


def replay_subject(stream: str, consumer: str) -> str:
    """Where a consumer's replicas take replay requests (outside every stream's subjects)."""
    return f"replay.{stream}.{consumer}"


async def ensure_dead_letter_stream(
    js: JetStreamContext,
    *,
    stream: str,
    replicas: int | None = None,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> None:
    """Create the dead-letter stream of `stream`, or bring an existing one to `replicas` (the
    event stream's) and `max_bytes`."""
    config = StreamConfig(
        name=dead_letter_stream(stream),
        subjects=[f"dead.{stream}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=MAX_AGE_S,
        max_msgs=MAX_MESSAGES,
        max_bytes=max_bytes,
    )
    await ensure_stream_config(js, config, replicas=replicas, follow=("max_bytes",))


@dataclass(frozen=True)
class DeadLetter:
    """A parked event: `seq` in the dead-letter stream, `data` the event as it was delivered."""

    seq: int
    consumer: str
    subject: str
    stream_seq: int
    deliveries: int
    reason: str
    error: str
    data: bytes
    parked_at: datetime | None

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> "DeadLetter":
        headers = raw.headers or {}
        return cls(
            seq=raw.seq or 0,
            consumer=headers.get("Vitrine-Consumer", ""),
            subject=headers.get("Vitrine-Subject", ""),
            stream_seq=int(headers.get("Vitrine-Stream-Seq", 0)),
            deliveries=int(headers.get("Vitrine-Deliveries", 0)),
            reason=headers.get("Vitrine-Reason", ""),
            error=headers.get("Vitrine-Error", ""),
            data=raw.data or b"",
            parked_at=raw.time,
        )


async def park(
    js: JetStreamContext, *, stream: str, consumer: str, message: Msg, reason: Reason, error: str
) -> None:
    """Keep `message` as a dead letter of `consumer`; raises if NATS refuses it (the caller then
    leaves the event to be redelivered rather than lose it)."""
    metadata = message.metadata
    stream_seq = metadata.sequence.stream if metadata.sequence else 0
    deliveries = metadata.num_delivered or 1
    error = " ".join(error.split())[:MAX_ERROR_CHARS]  # a header is one line
    carried = {k: v for k, v in (message.headers or {}).items() if not k.startswith("Nats-")}
    ack = await js.publish(
        dead_letter_subject(stream, consumer),
        message.data,
        stream=dead_letter_stream(stream),
        headers={
            **carried,  # trace context
            "Nats-Msg-Id": f"{consumer}.{stream_seq}",
            "Vitrine-Consumer": consumer,
            "Vitrine-Subject": message.subject,
            "Vitrine-Stream-Seq": str(stream_seq),
            "Vitrine-Deliveries": str(deliveries),
            "Vitrine-Reason": str(reason),
            "Vitrine-Error": error or "-",
        },
    )
    if ack.duplicate:  # parked before by a delivery that died before its term
        return
    DEAD_LETTERS.labels(consumer, reason).inc()
    log.error(
        "consumer %s parked event #%d (%s) as a dead letter after %d deliveries (%s): %s",
        consumer, stream_seq, message.subject, deliveries, reason, error,
    )  # fmt: skip


async def dead_letters(
    js: JetStreamContext, *, stream: str, consumer: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """The oldest `limit` dead letters of `stream` (of one consumer if given)."""
    name = dead_letter_stream(stream)
    subject = dead_letter_subject(stream, consumer) if consumer else f"dead.{stream}.>"
    found: list[DeadLetter] = []
    seq = 1
    while len(found) < limit:
        try:
            raw = await js.get_msg(name, seq, subject=subject, next=True)
        except NotFoundError:
            break
        found.append(DeadLetter.from_raw(raw))
        seq = (raw.seq or seq) + 1
    return found


async def dead_letter(js: JetStreamContext, *, stream: str, seq: int) -> DeadLetter:
    """One dead letter by its sequence in the dead-letter stream (NotFoundError if gone)."""
    return DeadLetter.from_raw(await js.get_msg(dead_letter_stream(stream), seq))


async def discard(js: JetStreamContext, *, stream: str, seq: int) -> None:
    """Remove a dead letter: replayed, or judged not worth it by an operator."""
    await js.delete_msg(dead_letter_stream(stream), seq)


async def serve_replays(
    nc: NATS, *, stream: str, consumer: str, replay: Callable[[int], Awaitable[bool]]
) -> Subscription:
    """Answer replay requests (a dead letter's seq) for `consumer`, one replica per request."""

    async def answer(request: Msg) -> None:
        reply: dict[str, Any]
        try:
            seq = int(request.data)
            reply = {"seq": seq, "handled": await replay(seq)}
        except NotFoundError:
            reply = {"error": f"no dead letter {request.data.decode(errors='replace')}"}
        except Exception as error:  # the handler failed again: the dead letter stays
            reply = {"error": describe(error)}
        log.info("consumer %s replay of dead letter %s: %s", consumer, request.data, reply)
        await request.respond(json.dumps(reply).encode())

    return await nc.subscribe(replay_subject(stream, consumer), queue="replay", cb=answer)


async def request_replay(
    nc: NATS, *, stream: str, consumer: str, seq: int, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Ask a running replica of `consumer` to replay dead letter `seq`; raises NoRespondersError
    when none runs."""
    answer = await nc.request(
        replay_subject(stream, consumer), str(seq).encode(), timeout=timeout_s
    )
    result: dict[str, Any] = json.loads(answer.data)
    return result
