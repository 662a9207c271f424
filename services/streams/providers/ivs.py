"""AWS IVS (boto3): a channel per live, created with the shop's recording configuration when it
has one, so an ended live becomes a replay in its S3 bucket; featured products can be pushed into
the video as timed metadata (`put_metadata`).

IVS's own events (EventBridge) are read in `ivs_events`.
"""

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from contracts.streams import Platform
from services.streams.providers.base import (
    EncoderStop,
    Ingest,
    InvalidProviderConfig,
    ProviderUnavailable,
    check_keys,
    check_url,
)

CONFIG_KEYS = {
    "region",
    "latency_mode",
    "channel_type",
    "recording_configuration_arn",
    "replay_base_url",
    "endpoint_url",
}
LATENCY_MODES = ("NORMAL", "LOW")
CHANNEL_TYPES = ("STANDARD", "BASIC", "ADVANCED_SD", "ADVANCED_HD")
INGEST_URL = "rtmps://{endpoint}:443/app/"
STREAM_ID_TAG = "vitrine:stream_id"
METADATA_MAX_BYTES = 1024

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_RECORDING_ARN = re.compile(
    r"^arn:aws[a-z-]*:ivs:[a-z0-9-]+:\d{12}:recording-configuration/[\w-]+$"
)
_CHANNEL_ARN = re.compile(r"^arn:aws[a-z-]*:ivs:(?P<region>[a-z0-9-]+):\d{12}:channel/[\w-]+$")
# One call waits at most about CONNECT_TIMEOUT_S + READ_TIMEOUT_S; ivs_metadata's time limits
# (one place for the numbers) fit the retries of an event within the consumer's ack_wait.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2.0, 5.0
# Our own retries are explicit (timed metadata); botocore's would hide throttling from them.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    user_agent_extra="vitrine",
)
_TRANSIENT_CODES = {"ThrottlingException", "InternalServerException", "ServiceUnavailable"}
# IVS unreachable or too slow (endpoint, connect/read timeout, connection closed …): may pass.
# Every other BotoCoreError (no credentials, invalid parameters, a bad certificate) will not.
_TRANSIENT_FAILURES: tuple[type[BotoCoreError], ...] = (BotoConnectionError, HTTPClientError)
_PERMANENT_FAILURES: tuple[type[BotoCoreError], ...] = (SSLError,)

T = TypeVar("T")


class IvsError(ProviderUnavailable):
    """IVS refused or failed a call; `transient` ones (throttling, 5xx, unreachable) may be
    tried again."""

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


def new_client(
    *,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    """An IVS client; without keys, boto3's default credential chain (role, environment …)."""
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    return session.client("ivs", endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


class IvsProvider:
    platform = Platform.AWS_IVS

    def __init__(self, *, config: dict[str, Any], secrets: dict[str, str]) -> None:
        self.region: str | None = config.get("region")
        self.latency_mode = config.get("latency_mode") or "LOW"
        self.channel_type = config.get("channel_type") or "STANDARD"
        self.recording_configuration_arn: str | None = config.get("recording_configuration_arn")
        self.replay_base_url: str | None = config.get("replay_base_url")
        self.endpoint_url: str | None = config.get("endpoint_url")
        self._access_key_id = secrets.get("access_key_id")
        self._secret_access_key = secrets.get("secret_access_key")
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        check_keys(config, allowed=CONFIG_KEYS, required={"region"})
        if not isinstance(config["region"], str) or not _REGION.match(config["region"]):
            raise InvalidProviderConfig("region must be an AWS region such as eu-west-1")
        clean: dict[str, Any] = {"region": config["region"]}
        for name, allowed in (("latency_mode", LATENCY_MODES), ("channel_type", CHANNEL_TYPES)):
            value = config.get(name)
            if value:
                if not isinstance(value, str) or value.upper() not in allowed:
                    raise InvalidProviderConfig(f"{name}: one of {', '.join(allowed)}")
                clean[name] = value.upper()
        arn = config.get("recording_configuration_arn")
        if arn:
            if not isinstance(arn, str) or not _RECORDING_ARN.match(arn):
                raise InvalidProviderConfig(
                    "recording_configuration_arn must be an IVS recording configuration ARN"
                )
            clean["recording_configuration_arn"] = arn
        for name in ("replay_base_url", "endpoint_url"):
            if config.get(name):
                clean[name] = check_url(config[name], name=name, schemes=("http", "https"))
        return clean

    def _client(self, region: str | None) -> Any:
        """One client per region (a channel is reached in the region of its ARN), made on first
        use: never at import, never for a provider that makes no call."""
        region = region or self.region
        if not region:
            raise InvalidProviderConfig("AWS IVS needs the setting region")
        if bool(self._access_key_id) != bool(self._secret_access_key):
            raise InvalidProviderConfig(
                "AWS IVS needs both secrets access_key_id and secret_access_key (or neither, "
                "to use the default AWS credentials)"
            )
        with self._lock:
            if region not in self._clients:
                self._clients[region] = new_client(
                    region=region,
                    endpoint_url=self.endpoint_url,
                    access_key_id=self._access_key_id,
                    secret_access_key=self._secret_access_key,
                )
            return self._clients[region]

    async def _call(self, call: Callable[[Any], T], *, arn: str | None = None) -> T:
        """boto3 is synchronous: its calls (and the client's creation) run in a thread."""
        region = _region_of(arn) if arn else None
        try:
            return await asyncio.to_thread(lambda: call(self._client(region)))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code") or "Unknown")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            raise IvsError(
                f"IVS answered {status}: {code}",
                code=code,
                transient=code in _TRANSIENT_CODES or status == 429 or status >= 500,
            ) from None
        except BotoCoreError as error:
            raise _failure(error) from None

    async def create(self, *, stream_id: UUID, stream_key: str, playback_id: str) -> Ingest:
        request: dict[str, Any] = {
            "name": f"vitrine-{stream_id}",
            "latencyMode": self.latency_mode,
            "type": self.channel_type,
            "tags": {STREAM_ID_TAG: str(stream_id)},
        }
        if self.recording_configuration_arn:
            request["recordingConfigurationArn"] = self.recording_configuration_arn
        created = await self._call(lambda ivs: ivs.create_channel(**request))
        channel, key = created["channel"], created["streamKey"]
        return Ingest(
            ingest_url=INGEST_URL.format(endpoint=channel["ingestEndpoint"]),
            stream_key=key["value"],
            playback_url=channel.get("playbackUrl"),
            provider_ref=channel["arn"],
        )

    async def rotate_key(
        self, *, stream_id: UUID, provider_ref: str | None, stream_key: str
    ) -> str:
        """IVS allows one key per channel: the old one is deleted, then a new one made."""
        if provider_ref is None:
            raise ProviderUnavailable("this live has no IVS channel")
        channel = provider_ref
        for key_arn in await self._call(lambda ivs: _stream_keys(ivs, channel), arn=channel):
            await self._delete_stream_key(channel, key_arn)
        created = await self._call(
            lambda ivs: ivs.create_stream_key(
                channelArn=channel, tags={STREAM_ID_TAG: str(stream_id)}
            ),
            arn=channel,
        )
        return str(created["streamKey"]["value"])

    async def _delete_stream_key(self, channel: str, key_arn: str) -> None:
        try:
            await self._call(lambda ivs: ivs.delete_stream_key(arn=key_arn), arn=channel)
        except IvsError as error:
            if error.code != "ResourceNotFoundException":
                raise

    async def delete(self, *, stream_id: UUID, provider_ref: str | None) -> None:
        if provider_ref is None:
            return
        try:
            await self._call(lambda ivs: ivs.delete_channel(arn=provider_ref), arn=provider_ref)
        except IvsError as error:
            if error.code != "ResourceNotFoundException":
                raise  # already gone otherwise; its stream keys go with it

    async def stop_encoder(
        self, *, stream_id: UUID, provider_ref: str | None, playback_id: str
    ) -> EncoderStop:
        """The channel's stream keys are deleted first, so an encoder set to reconnect (OBS is)
        cannot resume the broadcast, or its recording; then the stream is stopped."""
        if provider_ref is None:
            return EncoderStop(stopped=False, detail="this live has no IVS channel")
        channel = provider_ref
        try:
            for key_arn in await self._call(lambda ivs: _stream_keys(ivs, channel), arn=channel):
                await self._delete_stream_key(channel, key_arn)
            await self._call(lambda ivs: ivs.stop_stream(channelArn=channel), arn=channel)
        except IvsError as error:
            if error.code == "ChannelNotBroadcasting":
                return EncoderStop(stopped=False, detail="the channel was not broadcasting")
            if error.code == "ResourceNotFoundException":
                return EncoderStop(stopped=False, detail="IVS no longer has this channel")
            raise
        return EncoderStop(stopped=True, detail="IVS stopped the stream; its keys are deleted")

    async def put_metadata(self, *, channel_arn: str, metadata: str) -> bool:
        """Insert timed metadata into the channel's video; False when it is not broadcasting
        (nothing to do). One attempt: the caller paces and retries."""
        if len(metadata.encode()) > METADATA_MAX_BYTES:
            raise ValueError("IVS timed metadata is limited to 1 KB")
        try:
            await self._call(
                lambda ivs: ivs.put_metadata(channelArn=channel_arn, metadata=metadata),
                arn=channel_arn,
            )
        except IvsError as error:
            if error.code == "ChannelNotBroadcasting":
                return False
            raise
        return True


def _failure(error: BotoCoreError) -> IvsError:
    """The IvsError for a call botocore could not make. Its message names the failure's kind
    only: botocore's own text may quote parameters or the endpoint (never worth the risk)."""
    kind = type(error).__name__
    if isinstance(error, _TRANSIENT_FAILURES) and not isinstance(error, _PERMANENT_FAILURES):
        return IvsError(f"IVS is unreachable: {kind}", code=kind, transient=True)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return IvsError(f"no usable AWS credentials for IVS: {kind}", code=kind)
    return IvsError(f"IVS call not made: {kind}", code=kind)


def _stream_keys(ivs: Any, channel: str) -> list[str]:
    pages = ivs.get_paginator("list_stream_keys").paginate(channelArn=channel)
    return [key["arn"] for page in pages for key in page.get("streamKeys", [])]


def _region_of(channel_arn: str) -> str | None:
    match = _CHANNEL_ARN.match(channel_arn)
    return match["region"] if match else None
