"""AWS IVS for tests: EventBridge events in AWS's own format, IVS clients whose answers are
given in advance (botocore's Stubber) for the calls moto does not implement, and the streams
service's IVS settings, lives and webhook as its integration tests drive them."""

import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
from botocore.stub import Stubber

ACCOUNT = "123456789012"
REGION = "eu-west-1"
WEBHOOK, SECRET_HEADER = "/webhooks/ivs", "X-Vitrine-Webhook-Secret"
WEBHOOK_SECRET = "ivs-shared-secret-0123456789"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RECORDING = f"arn:aws:ivs:{REGION}:{ACCOUNT}:recording-configuration/AbCdef1G2hij"
REPLAYS = "https://d111111abcdef8.cloudfront.net"


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


# --- the streams service on IVS ------------------------------------------------------------------


async def choose_ivs(client: httpx.AsyncClient, admin: dict, **extra_secrets: str) -> dict:
    """IVS as the platform, with fresh access keys (so no client made before is used again)."""
    answer = await client.put(
        "/api/live/settings",
        json={
            "platform": "aws_ivs",
            "config": {
                "region": REGION,
                "latency_mode": "low",
                "channel_type": "STANDARD",
                "recording_configuration_arn": RECORDING,
                "replay_base_url": REPLAYS,
            },
            "secrets": {
                "access_key_id": f"AKIA{secrets.token_hex(8).upper()}",
                "secret_access_key": SECRET_ACCESS_KEY,
                "ivs_webhook_secret": WEBHOOK_SECRET,
                **extra_secrets,
            },
        },
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def create_live(client: httpx.AsyncClient, admin: dict) -> dict:
    response = await client.post("/api/live/streams", json={"title": "IVS live"}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def channel_of(aws: Any, live: dict) -> dict:
    """moto's channel behind a Vitrine live."""
    channels = aws.list_channels(filterByName=f"vitrine-{live['id']}")["channels"]
    assert len(channels) == 1
    return aws.get_channel(arn=channels[0]["arn"])["channel"]


async def live_of(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict:
    return (await client.get(f"/api/live/streams/{stream_id}", headers=admin)).json()


async def send(
    client: httpx.AsyncClient, body: bytes, *, secret: str | None = WEBHOOK_SECRET
) -> httpx.Response:
    """Post an EventBridge event to the IVS webhook, as the API destination would."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return await client.post(WEBHOOK, content=body, headers=headers)
