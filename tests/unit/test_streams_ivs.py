"""AWS IVS without a network: settings, EventBridge events and their secret, and the provider's
calls against a stubbed client (timed metadata: test_streams_ivs_metadata)."""

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from services.streams import ivs_webhooks
from services.streams.providers import ivs, mux
from services.streams.providers.base import InvalidProviderConfig, Kind
from services.streams.providers.ivs import IvsError, IvsProvider
from services.streams.providers.ivs_events import BadSecret, parse_event, verify_secret
from tests.support.ivs import StubbedIvs, channel_arn, recording_state, stream_state

CHANNEL = channel_arn()
KEY = "arn:aws:ivs:eu-west-1:123456789012:stream-key/AbCdef1G2hij"
RECORDING = "arn:aws:ivs:eu-west-1:123456789012:recording-configuration/AbCdef1G2hij"

# --- settings ------------------------------------------------------------------------------------


def test_settings_are_checked_and_normalised() -> None:
    clean = IvsProvider.validate_config(
        {
            "region": "eu-west-1",
            "latency_mode": "low",
            "channel_type": "advanced_hd",
            "recording_configuration_arn": RECORDING,
            "replay_base_url": "https://d111.cloudfront.net/",
            "endpoint_url": "http://127.0.0.1:5000",
        }
    )
    assert clean == {
        "region": "eu-west-1",
        "latency_mode": "LOW",
        "channel_type": "ADVANCED_HD",
        "recording_configuration_arn": RECORDING,
        "replay_base_url": "https://d111.cloudfront.net",
        "endpoint_url": "http://127.0.0.1:5000",
    }


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"region": "Europe"},
        {"region": "eu-west-1", "latency_mode": "ULTRA"},
        {"region": "eu-west-1", "channel_type": "PREMIUM"},
        {"region": "eu-west-1", "recording_configuration_arn": "arn:aws:s3:::bucket"},
        {"region": "eu-west-1", "replay_base_url": "ftp://cdn"},
        {"region": "eu-west-1", "endpoint_url": "javascript:alert(1)"},
        {"region": "eu-west-1", "api_key": "x"},
    ],
)
def test_wrong_settings_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderConfig):
        IvsProvider.validate_config(config)


# --- EventBridge ---------------------------------------------------------------------------------


def test_the_shared_secret_must_be_one_of_the_configured_ones() -> None:
    verify_secret(given="current", secrets=["previous", "current"])
    for given, secrets in [
        (None, ["current"]),
        ("", ["current"]),
        ("wrong", ["current"]),
        ("current", []),
        ("", [""]),
        ("curren", ["current"]),
    ]:
        with pytest.raises(BadSecret):
            verify_secret(given=given, secrets=secrets)


def test_stream_state_changes_map_to_what_they_mean_for_a_live() -> None:
    expected = {
        "Session Created": (Kind.CONNECTED, "connected"),
        "Stream Start": (Kind.LIVE, "live"),
        "Session Ended": (Kind.DISCONNECTED, "disconnected"),
        "Stream End": (Kind.DISCONNECTED, "disconnected"),
        "Stream Failure": (Kind.OTHER, "failed"),
        "Stream Takeover": (Kind.OTHER, None),
    }
    at = datetime(2024, 5, 16, 15, 54, 9, tzinfo=UTC)
    for name, (kind, state) in expected.items():
        ref, event = parse_event(stream_state(CHANNEL, name, event_id="eb-1", at=at), grace_s=12.5)
        assert (ref, event.kind, event.state, event.type) == (CHANNEL, kind, state, name)
        assert (event.source, event.id, event.occurred_at) == ("ivs", "eb-1", at)
        assert event.grace_s == (12.5 if kind is Kind.DISCONNECTED else None)


def test_a_finished_recording_becomes_a_replay_url() -> None:
    prefix = "ivs/v1/123456789012/AbCdef1G2hij/2024/5/16/15/54/st-1"
    _, event = parse_event(recording_state(CHANNEL, "Recording End", prefix=prefix), grace_s=0)
    assert event.kind is Kind.REPLAY_READY
    assert event.replay_url == (
        f"https://shop-recordings.s3.eu-west-1.amazonaws.com/{prefix}/media/hls/master.m3u8"
    )
    _, event = parse_event(
        recording_state(CHANNEL, "Recording End", prefix=prefix),
        grace_s=0,
        replay_base_url="https://d111.cloudfront.net",
    )
    assert event.replay_url == f"https://d111.cloudfront.net/{prefix}/media/hls/master.m3u8"
    for status in ("Recording Start", "Recording Start Failure", "Recording End Failure"):
        _, event = parse_event(recording_state(CHANNEL, status), grace_s=0)
        assert (event.kind, event.replay_url, event.type) == (Kind.OTHER, None, status)


@pytest.mark.parametrize(
    ("bucket", "prefix"),
    [
        ("shop-recordings", "ivs/../../etc/passwd"),
        ("shop-recordings", "ivs/v1?x=<script>"),
        ("shop-recordings", "/absolute"),
        ("Shop_Recordings!", "ivs/v1/1"),
    ],
)
def test_a_recording_where_ivs_never_writes_is_not_turned_into_a_url(
    bucket: str, prefix: str
) -> None:
    body = recording_state(CHANNEL, "Recording End", bucket=bucket, prefix=prefix)
    _, event = parse_event(body, grace_s=0)
    assert (event.kind, event.replay_url) == (Kind.OTHER, None)


def test_an_event_naming_no_channel_is_read_as_about_no_channel() -> None:
    body = json.loads(stream_state(CHANNEL, "Stream Start"))
    body["resources"] = []
    ref, event = parse_event(json.dumps(body).encode(), grace_s=0)
    assert (ref, event.kind) == (None, Kind.LIVE)


@pytest.mark.parametrize(
    "change",
    [
        {"source": "aws.s3"},
        {"id": None},
        {"id": ""},
        {"time": "yesterday"},
        {"detail": "Stream Start"},
        {"resources": "arn"},
    ],
)
def test_anything_but_an_ivs_event_is_refused(change: dict[str, Any]) -> None:
    body = {**json.loads(stream_state(CHANNEL, "Stream Start")), **change}
    body = {name: value for name, value in body.items() if value is not None}
    with pytest.raises(ValueError):
        parse_event(json.dumps(body).encode(), grace_s=0)
    with pytest.raises(ValueError):
        parse_event(b"not json", grace_s=0)


# --- the provider's calls ------------------------------------------------------------------------


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> StubbedIvs:
    stub = StubbedIvs()
    monkeypatch.setattr(ivs, "new_client", stub.new_client)
    return stub


def provider(**config: Any) -> IvsProvider:
    secrets = {"access_key_id": "AKIATEST", "secret_access_key": "never-shown-0123456789"}
    return IvsProvider(config={"region": "eu-west-1", **config}, secrets=secrets)


async def test_a_live_gets_a_channel_named_and_tagged_after_it(stubbed: StubbedIvs) -> None:
    stream_id = uuid4()
    stubbed.answer(
        "create_channel",
        {
            "channel": {
                "arn": CHANNEL,
                "ingestEndpoint": "a1b2c3d4e5f6.global-contribute.live-video.net",
                "playbackUrl": "https://a1b2.eu-west-1.playback.live-video.net/api/video/v1/x.m3u8",
            },
            "streamKey": {
                "arn": "arn:aws:ivs:eu-west-1:123456789012:stream-key/k",
                "value": "sk_1",
            },
        },
        {
            "name": f"vitrine-{stream_id}",
            "latencyMode": "NORMAL",
            "type": "BASIC",
            "tags": {"vitrine:stream_id": str(stream_id)},
            "recordingConfigurationArn": RECORDING,
        },
    )
    live = provider(
        latency_mode="NORMAL", channel_type="BASIC", recording_configuration_arn=RECORDING
    )
    ingest = await live.create(stream_id=stream_id, stream_key="unused", playback_id="p")
    assert ingest.ingest_url == "rtmps://a1b2c3d4e5f6.global-contribute.live-video.net:443/app/"
    assert (ingest.stream_key, ingest.provider_ref) == ("sk_1", CHANNEL)
    assert ingest.playback_url.endswith("/x.m3u8")
    stubbed.stubber.assert_no_pending_responses()


async def test_rotating_the_key_deletes_the_channels_keys_then_makes_one(
    stubbed: StubbedIvs,
) -> None:
    old = KEY
    stubbed.answer(
        "list_stream_keys",
        {"streamKeys": [{"arn": old, "channelArn": CHANNEL}]},
        {"channelArn": CHANNEL},
    )
    stubbed.answer("delete_stream_key", {}, {"arn": old})
    stubbed.answer(
        "create_stream_key",
        {"streamKey": {"arn": f"{old}2", "channelArn": CHANNEL, "value": "sk_new"}},
    )
    key = await provider().rotate_key(stream_id=uuid4(), provider_ref=CHANNEL, stream_key="x")
    assert key == "sk_new"
    stubbed.stubber.assert_no_pending_responses()


async def test_deleting_a_channel_already_gone_is_fine(stubbed: StubbedIvs) -> None:
    stubbed.fail("delete_channel", "ResourceNotFoundException", 404)
    await provider().delete(stream_id=uuid4(), provider_ref=CHANNEL)
    stubbed.fail("delete_channel", "AccessDeniedException", 403)
    with pytest.raises(IvsError, match="IVS answered 403: AccessDeniedException") as error:
        await provider().delete(stream_id=uuid4(), provider_ref=CHANNEL)
    assert "never-shown" not in str(error.value)
    assert not error.value.transient


async def test_timed_metadata_tells_throttling_from_a_channel_off_air(
    stubbed: StubbedIvs,
) -> None:
    stubbed.answer("put_metadata", {}, {"channelArn": CHANNEL, "metadata": "{}"})
    stubbed.fail("put_metadata", "ChannelNotBroadcasting", 404)
    stubbed.fail("put_metadata", "ThrottlingException", 429)
    stubbed.fail("put_metadata", "InternalServerException", 500)
    live = provider()
    assert await live.put_metadata(channel_arn=CHANNEL, metadata="{}") is True
    assert await live.put_metadata(channel_arn=CHANNEL, metadata="{}") is False
    for _ in range(2):
        with pytest.raises(IvsError) as error:
            await live.put_metadata(channel_arn=CHANNEL, metadata="{}")
        assert error.value.transient
    with pytest.raises(ValueError):
        await live.put_metadata(channel_arn=CHANNEL, metadata="x" * 1025)


async def test_half_a_key_pair_is_a_settings_error() -> None:
    half = IvsProvider(config={"region": "eu-west-1"}, secrets={"access_key_id": "AKIATEST"})
    with pytest.raises(InvalidProviderConfig):
        await half.delete(stream_id=uuid4(), provider_ref=CHANNEL)


async def test_a_call_gives_up_on_an_unresponsive_ivs_within_seconds() -> None:
    client = ivs.new_client(
        region="eu-west-1", endpoint_url=None, access_key_id="AKIATEST", secret_access_key="x"
    )
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    assert config.retries["total_max_attempts"] == 1  # retries are the caller's, within a budget


class FailingClient:
    """Stands in for an IVS client whose every call fails in botocore, before any answer."""

    def __init__(self, failure: BotoCoreError) -> None:
        self.failure = failure

    def put_metadata(self, **_: Any) -> dict:
        raise self.failure


ENDPOINT = "https://ivs.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        (EndpointConnectionError(endpoint_url=ENDPOINT), True),
        (ConnectTimeoutError(endpoint_url=ENDPOINT), True),
        (ReadTimeoutError(endpoint_url=ENDPOINT), True),
        (ConnectionClosedError(endpoint_url=ENDPOINT), True),
        (NoCredentialsError(), False),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), False),
        (ParamValidationError(report="Invalid value for metadata: never-shown"), False),
        (SSLError(endpoint_url=ENDPOINT, error="certificate verify failed"), False),
    ],
)
async def test_only_an_unreachable_or_slow_ivs_is_worth_trying_again(
    monkeypatch: pytest.MonkeyPatch, failure: BotoCoreError, transient: bool
) -> None:
    monkeypatch.setattr(ivs, "new_client", lambda **_: FailingClient(failure))
    with pytest.raises(IvsError) as error:
        await provider().put_metadata(channel_arn=CHANNEL, metadata="{}")
    assert error.value.transient is transient
    assert type(failure).__name__ in str(error.value)
    assert "never-shown" not in str(error.value) and "certificate" not in str(error.value)


def test_the_ivs_webhook_secrets_are_named_apart_from_muxs() -> None:
    # The settings keep every platform's secrets in one set: a shared name would be one secret.
    assert not set(ivs_webhooks.WEBHOOK_SECRET_NAMES) & set(mux.SECRET_NAMES)
    assert ivs_webhooks.WEBHOOK_SECRET_NAMES == (
        "ivs_webhook_secret",
        "ivs_webhook_secret_previous",
    )
