"""The webhooks service's settings: the SMTP ones are chassis.mailer's, with their production
rule, the same as the notifications service's."""

import pytest
from pydantic import ValidationError

from services.notifications.settings import NotificationsSettings
from services.webhooks.settings import WebhooksSettings

PRODUCTION = {
    "_env_file": None, "vitrine_env": "production", "jwt_secret": "j" * 48,
    "vitrine_secret_key": "k" * 48, "public_url": "https://live.example.com",
}  # fmt: skip


@pytest.mark.parametrize("settings", [WebhooksSettings, NotificationsSettings])
def test_production_refuses_smtp_credentials_sent_where_tls_is_only_used_when_offered(
    settings: type[WebhooksSettings] | type[NotificationsSettings],
) -> None:
    with pytest.raises(ValidationError, match="SMTP_URL carries credentials over smtp://"):
        settings(**PRODUCTION, smtp_url="smtp://alerts:secret@smtp.example.com:587")
    for url in ("smtp+starttls://u:p@smtp.example.com:587", "smtps://u:p@smtp.example.com",
                "smtp://relay.internal:25"):  # fmt: skip
        assert settings(**PRODUCTION, smtp_url=url).smtp_url == url
    # Outside production the catcher of `make dev`, credentials or not.
    assert settings(_env_file=None, smtp_url="smtp://u:p@127.0.0.1:1025").smtp_timeout_s == 15.0
