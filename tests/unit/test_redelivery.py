"""What a consumer counts as the event's failure and what as an outage, what it does with each
(a nak with which delay, a dead letter), and what a dead letter keeps of an error (no personal
data)."""

import asyncio
import smtplib
import ssl
import uuid
from types import SimpleNamespace

import asyncpg
import pytest
import sqlalchemy.exc as sa_exc
from pydantic import ValidationError

from chassis.consumer import EventConsumer, PoisonEvent
from chassis.dead_letters import MAX_ERROR_CHARS, Reason, describe
from chassis.errors import DatabaseUnavailable
from chassis.redelivery import OutageTally, Redelivery, is_outage
from chassis.settings import BusSettings, ServiceSettings
from contracts import Envelope, new_envelope
from contracts.streams import StreamDeleted


def _raised_from(error: BaseException, cause: BaseException | None) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def _raised_while(error: BaseException, handling: BaseException) -> BaseException:
    """`error` raised inside `except` of `handling` (its implicit `__context__`)."""
    try:
        try:
            raise handling
        except BaseException:
            raise error  # noqa: B904 - the implicit context is the point
    except BaseException as raised:
        return raised


def _from_none_while(error: BaseException, handling: BaseException) -> BaseException:
    """`raise error from None` inside `except` of `handling`: its context is suppressed."""
    try:
        try:
            raise handling
        except BaseException:
            raise error from None
    except BaseException as raised:
        return raised


class _State(Exception):
    """A driver error carrying a SQLSTATE, as SQLAlchemy's adapted asyncpg errors do."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.InterfaceError(
            "SELECT 1", {}, Exception("connection is closed"), connection_invalidated=True
        ),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        sa_exc.OperationalError("SELECT 1", {}, _State("08006")),  # connection failure
        sa_exc.OperationalError("SELECT 1", {}, _State("53300")),  # too many connections
        sa_exc.OperationalError("SELECT 1", {}, _State("57P01")),  # admin shutdown
        sa_exc.TimeoutError("QueuePool limit reached"),
        DatabaseUnavailable("ConnectionRefusedError: [Errno 111]"),
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        BrokenPipeError(32, "Broken pipe"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CrashShutdownError("crash"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        _raised_from(RuntimeError("while handling"), ConnectionResetError()),
        _raised_while(KeyError("live"), ConnectionRefusedError()),  # the implicit context
        sa_exc.DBAPIError(
            "SELECT 1", {}, _raised_from(Exception("x"), asyncpg.AdminShutdownError())
        ),
    ],
)
def test_a_dependency_away_is_an_outage(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("live"),
        IndexError(),
        RuntimeError("the shop's API says 500"),
        FileNotFoundError(2, "No such file"),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("deadlock detected")),
        sa_exc.DBAPIError("SELECT 1", {}, _State("40P01")),  # deadlock detected
        sa_exc.ProgrammingError("SELECT nope", {}, _State("42703")),  # undefined column
        # A query mistake the driver reports as an InterfaceError, the connection fine.
        sa_exc.InterfaceError(
            "SELECT $1", {}, asyncpg.InterfaceError("the server expects 1 argument, 2 passed")
        ),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        TimeoutError(),  # the handler's own deadline, not a connection's
        OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),  # generic OSError
        OSError(28, "No space left on device"),
        smtplib.SMTPException("the mail server said no"),
        smtplib.SMTPRecipientsRefused({"ada@example.com": (550, b"no such user")}),
        ssl.SSLError(1, "certificate verify failed"),
        _from_none_while(RuntimeError("said differently"), ConnectionError()),
        _from_none_while(RuntimeError("said differently"), ConnectionRefusedError()),
        _raised_from(RuntimeError("explicitly not"), None),
    ],
)
def test_an_error_of_the_event_or_the_handler_is_not_an_outage(error: BaseException) -> None:
    assert not is_outage(error)


def test_a_database_error_is_described_without_its_parameters_or_detail() -> None:
    orig = Exception(
        'duplicate key value violates unique constraint "subscribers_email_key"\n'
        "DETAIL:  Key (email)=(ada@example.com) already exists."
    )
    error = sa_exc.IntegrityError("INSERT INTO subscribers ...", {"email": "ada@example.com"}, orig)
    assert "ada@example.com" in str(error)  # what SQLAlchemy would have said
    described = describe(error)
    assert described == (
        'IntegrityError: duplicate key value violates unique constraint "subscribers_email_key"'
    )


def test_a_validation_error_is_described_without_the_rejected_input() -> None:
    with pytest.raises(ValidationError) as raised:
        Envelope.model_validate_json(b'{"id": "ada@example.com"}')
    described = describe(raised.value)
    assert described.startswith("ValidationError: ") and "ada@example.com" not in described
    assert "id: " in described


def test_a_description_is_one_capped_line() -> None:
    described = describe(RuntimeError("a\nb " + "x" * 1000))
    assert "\n" not in described and len(described) == MAX_ERROR_CHARS


def test_reasons_are_the_strings_the_headers_carry() -> None:
    assert [str(reason) for reason in Reason] == ["failed", "poison"]


def test_retry_delays_may_not_be_negative() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(consumer_retry_delays_s=(1.0, -1.0))


def test_the_bus_settings_need_no_service_secret_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VITRINE_ENV", "production")
    monkeypatch.setenv("NATS_URL", "nats://a:4222,nats://b:4222")
    with pytest.raises(ValidationError):
        ServiceSettings()  # the development secrets are refused ...
    assert BusSettings().nats_url == "nats://a:4222,nats://b:4222"  # ... and not needed here


def test_the_outage_delay_doubles_up_to_its_cap_and_never_overflows() -> None:
    redelivery = Redelivery()
    assert [redelivery.outage_delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert redelivery.outage_delay_s(0) == 1.0
    assert redelivery.outage_delay_s(10**9) == 30.0  # 2.0**(10**9) would overflow
    tiny = Redelivery(outage_first_s=1e-300, outage_max_s=1e300)
    assert tiny.outage_delay_s(10**9) == 1e-300 * 2.0**30


# --- what the consumer does with a delivery's outcome (NATS and PostgreSQL stubbed) ---------


class FakeMessage:
    def __init__(self, data: bytes, *, num_delivered: int = 1, stream_seq: int = 7) -> None:
        self.data = data
        self.subject = "t.live.x.stream.deleted"
        self.headers: dict[str, str] = {}
        self.metadata = SimpleNamespace(
            num_delivered=num_delivered, sequence=SimpleNamespace(stream=stream_seq)
        )
        self.answers: list[tuple[str, float | None]] = []

    async def ack(self) -> None:
        self.answers.append(("ack", None))

    async def nak(self, delay: float | None = None) -> None:
        self.answers.append(("nak", delay))

    async def term(self) -> None:
        self.answers.append(("term", None))


def _event() -> bytes:
    stream_id = uuid.UUID(int=1)
    envelope = new_envelope(StreamDeleted(stream_id=stream_id), stream_id=stream_id, producer="t")
    return envelope.model_dump_json().encode()


def _raising(error: BaseException):  # type: ignore[no-untyped-def]
    async def handle_once(envelope):  # type: ignore[no-untyped-def]
        raise error

    return handle_once


def _consumer(raising: BaseException | None, redelivery: Redelivery) -> tuple[EventConsumer, list]:
    parked: list = []
    consumer = EventConsumer(
        bus=None,  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
        processed=None,  # type: ignore[arg-type]
        durable="d", events="stream.deleted", handler=None,  # type: ignore[arg-type]
        subject_root="t.live", redelivery=redelivery,
    )  # fmt: skip

    async def handle_once(envelope):  # type: ignore[no-untyped-def]
        if raising is not None:
            raise raising
        return True

    async def park(message, reason, error):  # type: ignore[no-untyped-def]
        parked.append((reason, error))
        consumer.outages.forget(message)
        await message.term()

    consumer._handle_once = handle_once  # type: ignore[method-assign]
    consumer._park = park  # type: ignore[method-assign]
    return consumer, parked


REDELIVERY = Redelivery((1.0, 5.0), max_deliver=3, outage_first_s=1.0, outage_max_s=30.0)


async def test_an_outage_is_naked_with_a_growing_delay_and_never_parked() -> None:
    error = sa_exc.OperationalError("SELECT 1", {}, asyncpg.CannotConnectNowError("starting"))
    consumer, parked = _consumer(error, REDELIVERY)
    delays = []
    for deliveries in range(1, 51):  # far past max_deliver
        message = FakeMessage(_event(), num_delivered=deliveries)
        await consumer.handle(message)
        [(answer, delay)] = message.answers
        assert answer == "nak"
        delays.append(delay)
    assert parked == []
    assert delays[:7] == [1, 2, 4, 8, 16, 30, 30] and set(delays[5:]) == {30}


async def test_a_failure_after_a_long_outage_still_gets_its_tries() -> None:
    consumer, parked = _consumer(ConnectionRefusedError(), REDELIVERY)
    for deliveries in range(1, 21):
        await consumer.handle(FakeMessage(_event(), num_delivered=deliveries))
    consumer._handle_once = _raising(KeyError("live"))  # type: ignore[method-assign]
    first = FakeMessage(_event(), num_delivered=21)
    await consumer.handle(first)
    assert first.answers == [("nak", 1.0)] and parked == []  # its first failure, not its 21st
    last = FakeMessage(_event(), num_delivered=23)
    await consumer.handle(last)
    assert last.answers == [("term", None)] and parked[0][0] == Reason.FAILED
    assert len(consumer.outages) == 0


async def test_a_handler_bug_is_retried_with_growing_delays_then_parked() -> None:
    consumer, parked = _consumer(KeyError("live"), REDELIVERY)
    answers = []
    for deliveries in (1, 2, 3):
        message = FakeMessage(_event(), num_delivered=deliveries)
        await consumer.handle(message)
        answers += message.answers
    assert answers == [("nak", 1.0), ("nak", 5.0), ("term", None)]
    assert parked == [(Reason.FAILED, "KeyError: 'live'")]


async def test_a_poison_event_raised_while_handling_a_connection_error_is_parked_at_once() -> None:
    poison = _raised_while(PoisonEvent("no such product, ever"), ConnectionRefusedError())
    assert is_outage(poison)  # its context alone would make it one
    consumer, parked = _consumer(poison, REDELIVERY)
    message = FakeMessage(_event(), num_delivered=1)
    await consumer.handle(message)
    assert message.answers == [("term", None)]
    assert parked == [(Reason.POISON, "PoisonEvent: no such product, ever")]


async def test_an_event_past_max_deliver_that_never_ran_is_handled_not_parked() -> None:
    """Its earlier deliveries died with the process (a fetch-mate crashed it): it runs."""
    consumer, parked = _consumer(None, REDELIVERY)
    message = FakeMessage(_event(), num_delivered=50)
    await consumer.handle(message)
    assert message.answers == [("ack", None)] and parked == [] and consumer.handled == 1


async def test_a_shutdown_while_handling_neither_answers_nor_parks() -> None:
    consumer, parked = _consumer(asyncio.CancelledError(), REDELIVERY)
    message = FakeMessage(_event(), num_delivered=REDELIVERY.max_deliver)
    with pytest.raises(asyncio.CancelledError):
        await consumer.handle(message)
    assert message.answers == [] and parked == []  # JetStream redelivers it after ack_wait


def test_max_ack_pending_leaves_room_for_delayed_events() -> None:
    consumer, _ = _consumer(None, REDELIVERY)
    assert consumer._config().max_ack_pending == 10_000
    assert consumer._config().max_deliver == -1
    big = EventConsumer(
        bus=None, sessions=None, processed=None, durable="d",  # type: ignore[arg-type]
        events="x", handler=None, subject_root="t", batch=5000,  # type: ignore[arg-type]
    )  # fmt: skip
    assert big._config().max_ack_pending == 50_000


def test_the_outage_tally_is_bounded() -> None:
    tally = OutageTally(3)
    for seq in range(10):
        tally.add(FakeMessage(b"", stream_seq=seq))  # type: ignore[arg-type]
    assert len(tally) == 3
    assert tally.failures(FakeMessage(b"", num_delivered=4, stream_seq=9)) == 3  # type: ignore[arg-type]
    assert tally.failures(FakeMessage(b"", num_delivered=4, stream_seq=0)) == 4  # type: ignore[arg-type]
