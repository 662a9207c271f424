"""Featured products as AWS IVS timed metadata, without a network: the document put into the
video, and the calls to a channel paced, retried and bounded in time."""

import inspect
import json
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from botocore.exceptions import ConnectTimeoutError, NoCredentialsError

from chassis.consumer import EventConsumer
from contracts import new_envelope
from contracts.products import LiveProduct, ProductAdded, ProductFeatured, ProductUnfeatured
from services.streams import ivs_metadata
from services.streams.ivs_metadata import EVENT_BUDGET_S, FeaturedProductSync, timed_metadata
from services.streams.pacing import ChannelPacer
from services.streams.provider_settings import Deps
from services.streams.providers import ivs
from services.streams.providers.ivs import IvsError, IvsProvider
from tests.support.ivs import channel_arn

CHANNEL = channel_arn()

# --- timed metadata ------------------------------------------------------------------------------


def featured(**fields: Any) -> ProductFeatured:
    product = {
        "product_id": uuid4(),
        "name": "Silk scarf",
        "price": Decimal("49.90"),
        "live_price": Decimal("39.90"),
        "currency": "EUR",
        "promo_code": "LIVE10",
        "image_url": "https://shop.example/scarf.jpg",
        "product_url": "https://shop.example/scarf",
        **fields,
    }
    return ProductFeatured(product=LiveProduct(**product))


def document(payload: Any) -> tuple[str, dict[str, Any], UUID]:
    """The timed metadata of `payload`'s event: as sent, parsed, and the event's id."""
    envelope = new_envelope(payload, stream_id=uuid4(), producer="products")
    text = timed_metadata(envelope)
    assert text is not None
    return text, json.loads(text), envelope.id


def test_a_featured_product_becomes_a_compact_card() -> None:
    payload = featured()
    text, doc, event_id = document(payload)
    assert " " not in text.replace("Silk scarf", "")
    assert (doc["v"], doc["type"], doc["event_id"]) == (1, "product.featured", str(event_id))
    assert doc["product"] == {
        "id": str(payload.product.product_id),
        "name": "Silk scarf",
        "price": "49.90",
        "live_price": "39.90",
        "currency": "EUR",
        "promo_code": "LIVE10",
        "add_to_cart": "/api/live/cart/items",
        "image_url": "https://shop.example/scarf.jpg",
        "product_url": "https://shop.example/scarf",
    }
    product_id = uuid4()
    _, doc, _ = document(ProductUnfeatured(product_id=product_id))
    assert (doc["type"], doc["product"]) == ("product.unfeatured", {"id": str(product_id)})
    other = new_envelope(ProductAdded(product=featured().product), stream_id=uuid4(), producer="p")
    assert timed_metadata(other) is None


@pytest.mark.parametrize("name_length", [10, 150, 200, 400])
@pytest.mark.parametrize("url_length", [0, 300, 900, 2048])
@pytest.mark.parametrize("letter", ["a", "é", "🧣"])
def test_a_card_never_exceeds_one_kilobyte(name_length: int, url_length: int, letter: str) -> None:
    long_url = "https://shop.example/" + "p" * max(0, url_length - 21) if url_length else None
    payload = featured(
        name=letter * name_length,
        image_url=long_url,
        product_url=long_url,
        promo_code="P" * 64,
    )
    text, doc, _ = document(payload)
    assert len(text.encode()) <= 1024
    card = doc["product"]
    assert card["id"] == str(payload.product.product_id)
    assert (card["price"], card["currency"]) == ("49.90", "EUR")
    kept = card["name"].removesuffix("…")
    assert kept and payload.product.name.startswith(kept)


def test_links_go_before_the_name_is_cut() -> None:
    _, doc, _ = document(featured(name="Écharpe " * 20, image_url="https://i/" + "x" * 900))
    assert "image_url" not in doc["product"] and "product_url" not in doc["product"]
    assert doc["product"]["name"] == ("Écharpe " * 20)[:200]


# --- pacing and retries --------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0)


class FakeChannel:
    """Stands in for IvsProvider.put_metadata: answers from a script, notes when it was called."""

    def __init__(
        self,
        clock: FakeTime,
        answers: list[bool | IvsError] | None = None,
        *,
        call_s: float = 0.01,  # how long a call takes
    ) -> None:
        self.time = clock
        self.answers = answers or []
        self.call_s = call_s
        self.calls: list[tuple[float, str]] = []

    async def put_metadata(self, *, channel_arn: str, metadata: str) -> bool:
        self.calls.append((self.time.now, metadata))
        self.time.now += self.call_s
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, IvsError):
            raise answer
        return answer


def sync_for(clock: FakeTime, *, max_attempts: int = 5) -> FeaturedProductSync:
    pacer = ChannelPacer(rate=5, per_s=1.0, clock=clock.clock, sleep=clock.sleep)
    return FeaturedProductSync(
        deps=cast(Deps, None),
        pacer=pacer,
        clock=clock.clock,
        sleep=clock.sleep,
        max_attempts=max_attempts,
    )


async def test_at_most_five_calls_a_second_reach_a_channel_and_none_is_dropped() -> None:
    clock = FakeTime()
    sync, channel = sync_for(clock), FakeChannel(clock)
    for n in range(12):
        await sync.push(cast(IvsProvider, channel), channel=CHANNEL, metadata=str(n))
    starts = [start for start, _ in channel.calls]
    assert [metadata for _, metadata in channel.calls] == [str(n) for n in range(12)]
    for first, sixth in zip(starts, starts[5:], strict=False):
        assert sixth - first >= 1.0
    other = FakeChannel(clock)
    await sync.push(cast(IvsProvider, other), channel=channel_arn("other"), metadata="x")
    assert other.calls[0][0] == clock.now - 0.01  # another channel does not wait


async def test_throttling_and_server_errors_are_tried_again_with_backoff() -> None:
    clock = FakeTime()
    throttled = IvsError("IVS answered 429", code="ThrottlingException", transient=True)
    failing = IvsError("IVS answered 500", code="InternalServerException", transient=True)
    channel = FakeChannel(clock, [throttled, failing, True])
    sync = sync_for(clock)
    await sync.push(cast(IvsProvider, channel), channel=CHANNEL, metadata="m")
    assert [metadata for _, metadata in channel.calls] == ["m", "m", "m"]
    assert sync.pushed == 1

    gave_up = FakeChannel(clock, [throttled] * 3)
    with pytest.raises(IvsError):  # the consumer tries the event again later
        await sync_for(clock, max_attempts=3).push(
            cast(IvsProvider, gave_up), channel=CHANNEL, metadata="m"
        )
    assert len(gave_up.calls) == 3


async def test_refusals_and_channels_off_air_are_not_tried_again() -> None:
    clock = FakeTime()
    denied = IvsError("IVS answered 403", code="AccessDeniedException")
    channel = FakeChannel(clock, [denied, False])
    sync = sync_for(clock)
    await sync.push(cast(IvsProvider, channel), channel=CHANNEL, metadata="a")
    await sync.push(cast(IvsProvider, channel), channel=CHANNEL, metadata="b")
    assert len(channel.calls) == 2 and sync.pushed == 0


async def test_an_unreachable_ivs_is_given_up_on_well_within_the_consumers_ack_wait() -> None:
    # Every call waits for botocore's timeouts, as when IVS cannot be reached.
    config = ivs.new_client(
        region="eu-west-1", endpoint_url=None, access_key_id="AKIATEST", secret_access_key="x"
    ).meta.config
    clock = FakeTime()
    timeout = IvsError("IVS is unreachable: ConnectTimeoutError", transient=True)
    channel = FakeChannel(clock, [timeout] * 5, call_s=config.connect_timeout + config.read_timeout)
    with pytest.raises(IvsError):  # NAKed: the event is tried again later
        await sync_for(clock).push(cast(IvsProvider, channel), channel=CHANNEL, metadata="m")
    assert len(channel.calls) == 2
    ack_wait_s = inspect.signature(EventConsumer).parameters["ack_wait_s"].default
    assert clock.now <= EVENT_BUDGET_S <= ack_wait_s / 2


async def test_no_call_is_begun_that_could_not_end_before_the_deadline() -> None:
    clock = FakeTime()
    channel = FakeChannel(clock)
    sync = sync_for(clock)
    with pytest.raises(IvsError, match="no time left"):  # the wait for the live's turn took it
        await sync.push(
            cast(IvsProvider, channel), channel=CHANNEL, metadata="m", deadline=clock.now + 3
        )
    assert channel.calls == []
    assert await sync.push(
        cast(IvsProvider, channel), channel=CHANNEL, metadata="m", deadline=clock.now + 7
    )


class FailingClient:
    """An IVS client whose calls fail in botocore, counted."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.calls = 0

    def put_metadata(self, **_: Any) -> dict:
        self.calls += 1
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "calls"),
    [
        (NoCredentialsError(), 1),  # acknowledged: no retry can find credentials
        (ConnectTimeoutError(endpoint_url="https://ivs.eu-west-1.amazonaws.com"), 5),
    ],
)
async def test_missing_credentials_are_not_tried_again_but_timeouts_are(
    monkeypatch: pytest.MonkeyPatch, failure: Exception, calls: int
) -> None:
    client = FailingClient(failure)
    monkeypatch.setattr(ivs, "new_client", lambda **_: client)
    monkeypatch.setattr(ivs_metadata, "_backoff", lambda attempt: 0.0)
    live = IvsProvider(config={"region": "eu-west-1"}, secrets={})
    sync = sync_for(FakeTime())
    if calls == 1:
        assert await sync.push(live, channel=CHANNEL, metadata="m") is False
    else:
        with pytest.raises(IvsError):
            await sync.push(live, channel=CHANNEL, metadata="m")
    assert client.calls == calls


def test_idle_channels_are_forgotten() -> None:
    clock = FakeTime()
    pacer = ChannelPacer(rate=5, per_s=1.0, clock=clock.clock, sleep=clock.sleep, keep=2)
    first = pacer.channel("a")
    first.done()
    pacer.channel("b")
    clock.now += 5
    pacer.channel("c")
    assert pacer.channel("a") is not first
