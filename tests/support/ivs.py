"""AWS IVS for tests: EventBridge events in AWS's own format, and IVS clients whose answers are
given in advance (botocore's Stubber), for the calls moto does not implement."""

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def channel_arn(channel_id: str = "AbCdef1G2hij") -> str:
    return f"arn:aws:ivs:{REGION}:{ACCOUNT}:channel/{channel_id}"


def stream_state(
    channel: str,
    event_name: str,
    *,
    event_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """An "IVS Stream State Change" event as EventBridge posts it."""
    return _event(
        "IVS Stream State Change",
        channel,
        {"event_name": event_name, "channel_name": "vitrine", "stream_id": "st-1AbCdEfGhIjKlMn"},
        event_id=event_id,
        at=at,
    )


def recording_state(
    channel: str,
    status: str,
    *,
    bucket: str = "shop-recordings",
    prefix: str = f"ivs/v1/{ACCOUNT}/AbCdef1G2hij/2024/5/16/15/54/st-1AbCdEfGhIjKlMn",
    event_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """An "IVS Recording State Change" event as EventBridge posts it."""
    detail = {
        "recording_status": status,
        "recording_status_reason": "",
        "recording_s3_bucket_name": bucket,
        "recording_s3_key_prefix": prefix,
        "recording_duration_ms": 28435,
        "channel_name": "vitrine",
        "stream_id": "st-1AbCdEfGhIjKlMn",
    }
    return _event("IVS Recording State Change", channel, detail, event_id=event_id, at=at)


def _event(
    detail_type: str,
    channel: str,
    detail: dict[str, Any],
    *,
    event_id: str | None,
    at: datetime | None,
) -> bytes:
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return json.dumps(
        {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.ivs",
            "account": ACCOUNT,
            "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "region": REGION,
            "resources": [channel],
            "detail": detail,
        }
    ).encode()


class StubbedIvs:
    """An IVS client answering from a queue, that also records when each call was made."""

    def __init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="AKIATEST", aws_secret_access_key="test", region_name=REGION
        )
        self.client = session.client("ivs")
        self.stubber = Stubber(self.client)
        self.calls: list[tuple[str, dict[str, Any], float]] = []
        self.client.meta.events.register("before-parameter-build.ivs.*", self._record)
        self.stubber.activate()

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params), time.monotonic()))

    def new_client(self, **_: Any) -> Any:
        """Stands in for `services.streams.providers.ivs.new_client`."""
        return self.client

    def answer(self, operation: str, response: dict[str, Any], expected: Any = None) -> None:
        self.stubber.add_response(operation, response, expected)

    def fail(self, operation: str, code: str, status: int) -> None:
        self.stubber.add_client_error(
            operation, service_error_code=code, service_message=code, http_status_code=status
        )

    def made(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params, _ in self.calls if name == operation]

    def times(self, operation: str) -> list[float]:
        return [at for name, _, at in self.calls if name == operation]
