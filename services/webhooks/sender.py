"""One attempt: the delivery's body POSTed to its endpoint, signed per Standard Webhooks.

`webhook-id` is the event's id (the same on every attempt, so receivers can drop repeats),
`webhook-timestamp` the attempt's time, `webhook-signature` `v1,<base64 HMAC-SHA256 of
id.timestamp.body>` with the endpoint's secret — and, during a rotation's grace period, a second
signature with the previous one (space-separated, as the specification allows). Redirects are
not followed (a 3xx is a failure): the endpoint is the URL the admin registered.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from services.webhooks.targets import TargetRefused, check_resolved

USER_AGENT = "Vitrine-Webhooks/1.0 (+https://www.standardwebhooks.com)"
MAX_ERROR = 200


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(*, event_id: str, body: str, secrets: list[str], at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret (newest first)."""
    signatures = [Webhook(secret).sign(event_id, at, body) for secret in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


class Sender:
    def __init__(self, *, timeout_s: float, private_allowed: bool) -> None:
        self.private_allowed = private_allowed
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=20, keepalive_expiry=30.0),
            headers={"user-agent": USER_AGENT},
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def attempt(self, *, url: str, event_id: str, body: str, secrets: list[str]) -> Outcome:
        started, started_at = time.monotonic(), datetime.now(UTC)
        headers = signed_headers(event_id=event_id, body=body, secrets=secrets, at=started_at)
        headers["content-type"] = "application/json"
        try:
            # httpx bounds each phase; this bounds the whole (a receiver dripping its headers).
            async with asyncio.timeout(self.timeout_s):
                await check_resolved(url, private_allowed=self.private_allowed)
                async with self.client.stream(
                    "POST", url, content=body.encode(), headers=headers
                ) as answer:
                    status: int | None = answer.status_code  # its body is not even read
            error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
        except TargetRefused as refused:
            status, error = None, f"refused: {refused}"
        except (httpx.TimeoutException, TimeoutError):
            status, error = None, "timed out"
        except httpx.HTTPError as failure:
            status, error = None, _describe(failure)
        except Exception as failure:  # a URL httpx will not call (say, a host IDNA refuses)
            status, error = None, f"not sent: {type(failure).__name__}"
        return Outcome(started_at, status, error, int((time.monotonic() - started) * 1000))


def _describe(failure: httpx.HTTPError) -> str:
    """What went wrong, without the URL (it may carry a token in its query)."""
    text = str(failure).split(" for url ", 1)[0] or type(failure).__name__
    return f"{type(failure).__name__}: {text}"[:MAX_ERROR]
