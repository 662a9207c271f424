"""Telling the admin that an endpoint was disabled: its state says so (reason and time), and
here a log line, a metric and, when WEBHOOKS_ADMIN_EMAIL is set, an e-mail."""

import logging
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter

from chassis.mailer import Mailer, SendFailed

log = logging.getLogger(__name__)

DISABLED = Counter(
    "vitrine_webhook_endpoints_disabled_total",
    "Webhook endpoints disabled after repeated failures",
)


def shown(url: str) -> str:
    """The URL without its query (which may hold a receiver's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Alerts:
    def __init__(self, *, mailer: Mailer | None, to: str | None, sender: str) -> None:
        self.mailer = mailer if to else None
        self.to = to
        self.sender = sender

    async def endpoint_disabled(self, endpoint: Any) -> None:
        """Called once the endpoint's disabling is committed; never raises."""
        DISABLED.inc()
        log.warning(
            "webhook endpoint %s disabled: %s (POST /api/webhooks/endpoints/%s/enable "
            "re-enables it)", endpoint.id, endpoint.disabled_reason, endpoint.id,
        )  # fmt: skip
        if self.mailer is None or self.to is None:
            return
        message = EmailMessage()
        message["From"], message["To"] = self.sender, self.to
        message["Subject"] = "Vitrine: a webhook endpoint was disabled"
        message.set_content(
            f"The webhook endpoint {shown(endpoint.url)} ({endpoint.id}) was disabled on "
            f"{endpoint.disabled_at:%Y-%m-%d %H:%M} UTC: {endpoint.disabled_reason}.\n\n"
            "No event is sent to it until it is enabled again; what was waiting for it goes "
            "out then, in order. Its delivery log says what it answered:\n"
            f"  GET /api/webhooks/endpoints/{endpoint.id}/deliveries\n"
            "Once the receiver works, enable it:\n"
            f"  POST /api/webhooks/endpoints/{endpoint.id}/enable\n"
        )
        try:
            await self.mailer.send(message)
        except SendFailed as failure:
            log.warning("could not e-mail the admin about endpoint %s: %s", endpoint.id, failure)
