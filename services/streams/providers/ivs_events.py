"""AWS IVS's events, as EventBridge delivers them through an API destination.

EventBridge cannot sign what it posts; the API destination's connection adds a header holding a
shared secret instead (`X-Vitrine-Webhook-Secret`). The body is the EventBridge event itself:
`{"version": "0", "id", "detail-type", "source": "aws.ivs", "time", "region", "resources":
[<channel ARN>], "detail": {...}}`, with `detail.event_name` for "IVS Stream State Change" and
`detail.recording_status` for "IVS Recording State Change".
"""

import hmac
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from services.streams.providers.base import Kind, ProviderEvent

SOURCE = "ivs"
SECRET_HEADER = "X-Vitrine-Webhook-Secret"  # noqa: S105 (a header name)
STREAM_STATE = "IVS Stream State Change"
RECORDING_STATE = "IVS Recording State Change"
REPLAY_PATH = "{base}/{prefix}/media/hls/master.m3u8"
S3_URL = "https://{bucket}.s3.{region}.amazonaws.com"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,1023}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")

# Stream state names → what they mean for a live (kind, state shown to the admin).
_STREAM_KINDS = {
    "Session Created": (Kind.CONNECTED, "connected"),
    "Stream Start": (Kind.LIVE, "live"),
    # The encoder left (Session Ended may come first): the live ends after the grace.
    "Session Ended": (Kind.DISCONNECTED, "disconnected"),
    "Stream End": (Kind.DISCONNECTED, "disconnected"),
    "Stream Failure": (Kind.OTHER, "failed"),
}
# Where the recording's takes begin and end (an encoder reconnecting within the recording
# configuration's reconnect window is merged into the same recording, without the gap).
_TAKES = {"Stream Start": "start", "Stream End": "end", "Session Ended": "end"}
MAX_RECORDING_MS = 7 * 24 * 3600 * 1000


class BadSecret(Exception):
    """The event was not posted by our EventBridge API destination."""


def verify_secret(*, given: str | None, secrets: Iterable[str]) -> None:
    """Raise BadSecret unless `given` is one of the (non-empty) `secrets`, compared in constant
    time."""
    if not given:
        raise BadSecret(f"missing {SECRET_HEADER}")
    matched = False
    for secret in secrets:
        if secret and hmac.compare_digest(given.encode(), secret.encode()):
            matched = True
    if not matched:
        raise BadSecret(f"wrong {SECRET_HEADER}")


def parse_event(
    body: bytes, *, grace_s: float, replay_base_url: str | None = None
) -> tuple[str | None, ProviderEvent]:
    """The IVS channel (ARN) an EventBridge event is about, and what it says. An encoder that
    left keeps its live for `grace_s`; a finished recording's replay is served from
    `replay_base_url` (else straight from its S3 bucket). ValueError if it is not an IVS event."""
    try:
        payload = orjson.loads(body)
        if payload["source"] != "aws.ivs":
            raise ValueError
        detail_type = str(payload["detail-type"])
        detail = payload["detail"]
        event_id = str(payload["id"])
        occurred_at = _utc(datetime.fromisoformat(str(payload["time"]).replace("Z", "+00:00")))
        resources = payload.get("resources") or []
        if not isinstance(detail, dict) or not isinstance(resources, list):
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("not an AWS IVS EventBridge event") from None
    if not 0 < len(event_id) <= 200:
        raise ValueError("an EventBridge event id is 1 to 200 characters")
    channel = next((r for r in resources if isinstance(r, str) and ":channel/" in r), None)
    if detail_type == RECORDING_STATE:
        name = str(detail.get("recording_status") or "Recording")
        replay_url = duration_s = None
        if name == "Recording End":
            replay_url = _replay_url(detail, region=payload.get("region"), base=replay_base_url)
            duration_s = _seconds(detail.get("recording_duration_ms"))
        kind = Kind.REPLAY_READY if replay_url else Kind.OTHER
        event = ProviderEvent(
            source=SOURCE,
            type=name,
            kind=kind,
            id=event_id,
            occurred_at=occurred_at,
            replay_url=replay_url,
            duration_s=duration_s,
        )
        return channel, event
    name = str(detail.get("event_name") or detail_type)
    kind, state = (
        _STREAM_KINDS.get(name, (Kind.OTHER, None))
        if detail_type == STREAM_STATE
        else (Kind.OTHER, None)
    )
    event = ProviderEvent(
        source=SOURCE,
        type=name,
        kind=kind,
        id=event_id,
        occurred_at=occurred_at,
        state=state,
        grace_s=grace_s if kind is Kind.DISCONNECTED else None,
        take=_TAKES.get(name) if detail_type == STREAM_STATE else None,
    )
    return channel, event


def _seconds(milliseconds: object) -> float | None:
    """A recording's length in seconds, from IVS's `recording_duration_ms`."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int | float):
        return None
    if not 0 <= milliseconds < MAX_RECORDING_MS:
        return None
    return round(milliseconds / 1000, 3)


def _replay_url(detail: dict[str, Any], *, region: object, base: str | None) -> str | None:
    """Where IVS wrote the recording's HLS master playlist; None for anything that does not
    look like what IVS writes (never turned into a URL)."""
    bucket, prefix = detail.get("recording_s3_bucket_name"), detail.get("recording_s3_key_prefix")
    if not isinstance(prefix, str) or not _KEY_PREFIX.match(prefix) or ".." in prefix:
        return None
    if base is None:
        if not isinstance(bucket, str) or not _BUCKET.match(bucket):
            return None
        if not isinstance(region, str) or not _REGION.match(region):
            return None
        base = S3_URL.format(bucket=bucket, region=region)
    return REPLAY_PATH.format(base=base.rstrip("/"), prefix=prefix.strip("/"))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
