"""The notifications service's pure parts: signed links, the messages in both languages, the
SMTP URL, and what a subscription request accepts."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from chassis.mailer import SmtpServer
from services.notifications.letters import push_ttl_s
from services.notifications.messages import Letter, compose, local_time, push_payload
from services.notifications.models import Kind
from services.notifications.schemas import ReminderRequest
from services.notifications.tokens import BadToken, Purpose, Signer

LIVE = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # a Tuesday, 18:00 in Paris


def letter(kind: Kind = Kind.STARTING_SOON, **changes) -> Letter:
    values = {
        "delivery_id": uuid4(), "kind": kind, "to": "ann@example.com", "language": "fr",
        "time_zone": "Europe/Paris", "title": "Soldes <b>d'hiver</b>", "scheduled_at": LIVE,
        "action_url": "https://shop.example/live/1",
        "unsubscribe_url": "https://shop.example/api/live/reminders/unsubscribe?token=t",
    }  # fmt: skip
    return Letter(**{**values, **changes})


def test_a_signed_link_names_its_subscription_for_its_purpose_only() -> None:
    signer, subscription = Signer("a-secret-key-of-32-characters-at-least"), uuid4()
    token = signer.sign(Purpose.UNSUBSCRIBE, subscription)
    assert signer.verify(Purpose.UNSUBSCRIBE, token) == subscription
    with pytest.raises(BadToken):
        signer.verify(Purpose.CONFIRM, token)
    with pytest.raises(BadToken):
        Signer("another-secret-key-of-32-characters").verify(Purpose.UNSUBSCRIBE, token)
    for forged in ("", "x", "a.b.c", token + "A", "é." + token.split(".")[1], "a" * 500):
        with pytest.raises(BadToken):
            signer.verify(Purpose.UNSUBSCRIBE, forged)


def test_only_the_exact_text_signed_is_a_token() -> None:
    """Base64 has other spellings of the same bytes (padding, a last character's unused bits,
    characters the decoder skips): none of them is accepted, so a link has one text only."""
    signer, subscription = Signer("a-secret-key-of-32-characters-at-least"), uuid4()
    token = signer.sign(Purpose.CONFIRM, subscription)
    head, mac = token.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = last[last.index(mac[-1]) + 1]  # differs only in bits the decoder drops
    spellings = [
        f"{head}==.{mac}", f"{head}.{mac}==", f"{head}.{mac[:-1]}{same_bytes}",
        f"{head}.{mac}\n", f" {token}", f"{head}.{mac[:10]}!{mac[10:]}"[:45],
        f"{head[:5]}+{head[6:]}.{mac}", token.replace(".", ".."),
    ]  # fmt: skip
    for spelling in spellings:
        with pytest.raises(BadToken):
            signer.verify(Purpose.CONFIRM, spelling)
    assert signer.verify(Purpose.CONFIRM, token) == subscription


def test_the_time_is_said_in_the_subscribers_zone_and_language() -> None:
    assert local_time(LIVE, language="fr", time_zone="Europe/Paris") == (
        "mardi 3 mars 2026 à 18:00 (Europe/Paris)"
    )
    assert local_time(LIVE, language="en", time_zone="America/New_York") == (
        "Tuesday 3 March 2026, 12:00 (America/New_York)"
    )


def test_a_reminder_is_plain_text_and_html_with_one_click_unsubscribe() -> None:
    message = compose(letter(), sender="Shop <live@shop.example>", now=LIVE - timedelta(minutes=15))
    assert message["Subject"] == "« Soldes <b>d'hiver</b> » commence dans 15 min"
    assert message["List-Unsubscribe"] == (
        "<https://shop.example/api/live/reminders/unsubscribe?token=t>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@shop.example>")
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Quand : mardi 3 mars 2026 à 18:00 (Europe/Paris)" in text
    assert "Rejoindre le live : https://shop.example/live/1" in text
    assert "<b>" not in html and "&lt;b&gt;" in html  # the title is text, never markup


def test_a_late_reminder_says_the_minutes_actually_left() -> None:
    message = compose(letter(language="en"), sender="x@shop.example", now=LIVE - timedelta(
        minutes=4, seconds=10))  # fmt: skip
    assert message["Subject"] == "“Soldes <b>d'hiver</b>” starts in 5 min"


def test_a_push_is_short_and_lives_no_longer_than_it_is_true() -> None:
    payload = push_payload(letter(Kind.LIVE, language="en"), now=LIVE)
    assert payload["title"] == "“Soldes <b>d'hiver</b>” is live now"
    assert payload["url"] == "https://shop.example/live/1"

    class Row:
        kind, scheduled_at = Kind.STARTING_SOON.value, LIVE

    assert push_ttl_s(Row, LIVE - timedelta(minutes=15)) == 900


@pytest.mark.parametrize(
    ("url", "port", "implicit_tls", "start_tls", "username"),
    [
        ("smtp://127.0.0.1:1025", 1025, False, None, None),
        ("smtp+starttls://key:se%40cret@smtp.example.com", 587, False, True, "key"),
        ("smtps://smtp.example.com", 465, True, False, None),
    ],
)
def test_the_smtp_url_says_how_to_connect(url, port, implicit_tls, start_tls, username) -> None:
    server = SmtpServer.from_url(url)
    assert (server.port, server.implicit_tls, server.start_tls, server.username) == (
        port, implicit_tls, start_tls, username,
    )  # fmt: skip
    if username:
        assert server.password == "se@cret"


def test_a_request_names_a_real_time_zone_and_one_channel() -> None:
    assert ReminderRequest(email="A@Example.com", time_zone="Asia/Tokyo").time_zone == "Asia/Tokyo"
    for bad in ({"time_zone": "Nowhere/Atall"}, {"time_zone": "/etc/passwd"},
                {"channel": "webpush"}, {"email": "a@b.example", "language": "es"}):  # fmt: skip
        with pytest.raises(ValidationError):
            ReminderRequest(**bad)


def test_a_title_with_line_breaks_is_one_line_in_the_subject_and_the_push() -> None:
    for title in ("Spring\nsale", "Spring\r\nsale", "Spring\u2028sale", " Spring \x0b\x0c sale\n"):
        item = letter(language="en", title=title)
        message = compose(item, sender="x@shop.example", now=LIVE - timedelta(minutes=15))
        assert message["Subject"] == "“Spring sale” starts in 15 min"
        assert b"Spring sale" in message.as_bytes()  # serialises: the Subject is sendable
        assert push_payload(item, now=LIVE - timedelta(minutes=15))["title"] == (
            "“Spring sale” starts in 15 min"
        )


PRODUCTION = {
    "_env_file": None, "vitrine_env": "production", "jwt_secret": "j" * 48,
    "vitrine_secret_key": "k" * 48, "public_url": "https://live.example.com",
    "smtp_url": "smtp+starttls://user:secret@smtp.example.com:587",
}  # fmt: skip


def test_production_needs_a_public_https_address_and_smtp_credentials_under_tls() -> None:
    from services.notifications.settings import NotificationsSettings

    assert NotificationsSettings(**PRODUCTION).public_url == "https://live.example.com"
    assert NotificationsSettings(**{**PRODUCTION, "smtp_url": "smtps://u:p@smtp.example.com"})
    assert NotificationsSettings(**{**PRODUCTION, "smtp_url": "smtp://relay.internal:25"})
    refused = ("http://127.0.0.1:8000", "http://live.example.com", "https://localhost",
               "https://127.0.0.1", "https://[::1]:8443", "https://app.localhost")  # fmt: skip
    for public_url in refused:
        with pytest.raises(ValidationError, match="PUBLIC_URL"):
            NotificationsSettings(**{**PRODUCTION, "public_url": public_url})
    with pytest.raises(ValidationError, match="SMTP_URL"):
        NotificationsSettings(**{**PRODUCTION, "smtp_url": "smtp://user:secret@smtp.example.com"})
    # Development keeps its defaults.
    development = NotificationsSettings(_env_file=None, vitrine_env="development")
    assert development.public_url == "http://127.0.0.1:8000"
    NotificationsSettings(_env_file=None, smtp_url="smtp://u:p@127.0.0.1:1025")


def test_the_default_time_zone_must_be_a_real_zone() -> None:
    from services.notifications.settings import NotificationsSettings

    zoned = NotificationsSettings(_env_file=None, reminder_default_time_zone="America/New_York")
    assert zoned.reminder_default_time_zone == "America/New_York"
    for zone in ("Europe/Pariss", "Paris", "../etc/passwd", ""):
        with pytest.raises(ValidationError, match="time zone"):
            NotificationsSettings(_env_file=None, reminder_default_time_zone=zone)
