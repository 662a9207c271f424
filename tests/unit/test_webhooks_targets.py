"""Where an outbound webhook may point (services/webhooks/targets.py), and the Standard Webhooks
headers it is sent with, checked by the `standardwebhooks` library itself."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.webhooks.endpoints import new_secret
from services.webhooks.sender import signed_headers
from services.webhooks.targets import TargetRefused, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://localhost/",
        "http://api.localhost/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_targets_are_refused_unless_allowed(url):
    with pytest.raises(TargetRefused, match="public"):
        check_url(url, private_allowed=False)
    assert check_url(url, private_allowed=True) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "http"),
        ("javascript:alert(1)", "http"),
        ("https://", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/a b", "spaces"),
        ("https://example.com:99999/", "valid"),
        ("https://example.com/#x", "fragment"),
    ],
)
def test_malformed_urls_are_refused_saying_why(url, why):
    with pytest.raises(TargetRefused, match=why):
        check_url(url, private_allowed=True)


def test_a_public_https_url_with_a_query_is_fine():
    url = "https://hooks.example.com/vitrine?token=abc"
    assert check_url(url, private_allowed=False) == url


def test_the_signature_verifies_with_each_secret_and_not_with_another():
    current, previous, body = new_secret(), new_secret(), '{"id":"e-1","data":{"é":1}}'
    headers = signed_headers(event_id="e-1", body=body, secrets=[current, previous],
                             at=datetime.now(UTC))  # fmt: skip
    assert headers["webhook-id"] == "e-1"
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (current, previous):
        assert Webhook(secret).verify(body.encode(), headers) == {"id": "e-1", "data": {"é": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(body.replace("1", "2").encode(), headers)


def test_a_stale_timestamp_is_refused_by_receivers():
    secret, body = new_secret(), "{}"
    old = signed_headers(event_id="e", body=body, secrets=[secret],
                         at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, old)
