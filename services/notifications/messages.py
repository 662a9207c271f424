"""The e-mails, in French and English: subject, plain text and HTML, the live's time in the
subscriber's time zone, a link to the live, and the one-click unsubscribe headers (RFC 8058)."""

import html
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from uuid import UUID
from zoneinfo import ZoneInfo

from services.notifications.models import Kind

DAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}  # fmt: skip

# (subject, first line, button) per kind and language; {title}, {minutes} filled in.
TEXTS: dict[Kind, dict[str, tuple[str, str, str]]] = {
    Kind.CONFIRM: {
        "fr": ("Confirmez votre rappel : {title}",
               "Vous avez demandé à être prévenu(e) de « {title} ». Confirmez pour recevoir "
               "les rappels ; sans confirmation, vous ne recevrez rien d'autre.",
               "Confirmer"),
        "en": ("Confirm your reminder: {title}",
               "You asked to hear about “{title}”. Confirm to get the reminders; without it, "
               "you will get nothing else.",
               "Confirm"),
    },
    Kind.STARTING_SOON: {
        "fr": ("« {title} » commence dans {minutes} min",
               "Le live « {title} » commence dans {minutes} minutes.", "Rejoindre le live"),
        "en": ("“{title}” starts in {minutes} min",
               "The live “{title}” starts in {minutes} minutes.", "Join the live"),
    },
    Kind.LIVE: {
        "fr": ("« {title} » est en direct", "Le live « {title} » a commencé.", "Regarder"),
        "en": ("“{title}” is live now", "The live “{title}” has started.", "Watch now"),
    },
    Kind.REPLAY: {
        "fr": ("Le replay de « {title} » est disponible",
               "Vous avez manqué « {title} » ? Le replay est prêt.", "Voir le replay"),
        "en": ("The replay of “{title}” is ready",
               "Missed “{title}”? The replay is ready.", "Watch the replay"),
    },
}  # fmt: skip
SHOP = {"fr": "les prochains lives de la boutique", "en": "the shop's coming lives"}
WHEN = {"fr": "Quand : {when}", "en": "When: {when}"}
UNSUBSCRIBE = {"fr": "Ne plus recevoir ces messages", "en": "Stop these messages"}
SEP = {"fr": " : ", "en": ": "}  # French puts a space before the colon
IGNORE = {
    "fr": "Si vous n'avez rien demandé, ignorez ce message.",
    "en": "If you did not ask for this, ignore this message.",
}


@dataclass(frozen=True)
class Letter:
    """What one message says, to whom, and its links."""

    delivery_id: UUID
    kind: Kind
    to: str
    language: str
    time_zone: str
    title: str
    scheduled_at: datetime | None
    action_url: str  # the live (or, for a confirmation, the confirm page)
    unsubscribe_url: str


def local_time(moment: datetime, *, language: str, time_zone: str) -> str:
    """`mardi 3 mars 2026 à 18:00 (Europe/Paris)` / `Tuesday 3 March 2026, 18:00 (…)`."""
    at = moment.astimezone(ZoneInfo(time_zone))
    day, month = DAYS[language][at.weekday()], MONTHS[language][at.month - 1]
    clock = f"{at:%H:%M}"
    if language == "fr":
        return f"{day} {at.day} {month} {at.year} à {clock} ({time_zone})"
    return f"{day} {at.day} {month} {at.year}, {clock} ({time_zone})"


def one_line(title: str) -> str:
    """A title fit for a header or a notification: any line break or run of blanks is one space
    (a raw CR/LF in a Subject makes the message unsendable)."""
    return " ".join(title.split())


def minutes_left(scheduled_at: datetime | None, now: datetime) -> int:
    if scheduled_at is None:
        return 0
    return max(1, math.ceil((scheduled_at - now).total_seconds() / 60))


def compose(letter: Letter, *, sender: str, now: datetime | None = None) -> EmailMessage:
    """The message, plain text and HTML, ready for SMTP."""
    now = now or datetime.now(UTC)
    language = letter.language if letter.language in DAYS else "en"
    title = one_line(letter.title) or SHOP[language]
    subject, lead, button = TEXTS[letter.kind][language]
    fill = {"title": title, "minutes": minutes_left(letter.scheduled_at, now)}
    lines = [lead.format(**fill)]
    if letter.scheduled_at is not None and letter.kind in (Kind.CONFIRM, Kind.STARTING_SOON):
        when = local_time(letter.scheduled_at, language=language, time_zone=letter.time_zone)
        lines.append(WHEN[language].format(when=when))
    message = EmailMessage()
    message["Subject"] = subject.format(**fill)
    message["From"] = sender
    message["To"] = letter.to
    message["Date"] = format_datetime(now)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "vitrine.localhost"
    # The same delivery keeps its id, so a resend after a crash is recognisable as one.
    message["Message-ID"] = make_msgid(idstring=letter.delivery_id.hex, domain=domain)
    message["List-Unsubscribe"] = f"<{letter.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    ignore = [IGNORE[language]] if letter.kind is Kind.CONFIRM else []
    message.set_content(
        "\n\n".join([*lines, f"{button}{SEP[language]}{letter.action_url}", *ignore,
                     f"{UNSUBSCRIBE[language]}{SEP[language]}{letter.unsubscribe_url}"]) + "\n"
    )  # fmt: skip
    message.add_alternative(
        _html(lines, button=button, url=letter.action_url, notes=ignore, language=language,
              unsubscribe=letter.unsubscribe_url),
        subtype="html",
    )  # fmt: skip
    message["Content-Language"] = language  # after the content, which resets Content-* headers
    return message


def _html(
    lines: list[str], *, button: str, url: str, notes: list[str], language: str, unsubscribe: str
) -> str:
    e = html.escape
    body = "".join(f"<p>{e(line)}</p>" for line in lines)
    extra = "".join(f'<p style="color:#666">{e(note)}</p>' for note in notes)
    return (
        f'<!doctype html><html lang="{language}"><body style="font-family:sans-serif">{body}'
        f'<p><a href="{e(url)}" style="background:#111;color:#fff;padding:10px 16px;'
        f'border-radius:6px;text-decoration:none">{e(button)}</a></p>{extra}'
        f'<p style="font-size:12px;color:#666"><a href="{e(unsubscribe)}">'
        f"{e(UNSUBSCRIBE[language])}</a></p></body></html>"
    )


def push_payload(letter: Letter, *, now: datetime | None = None) -> dict[str, object]:
    """What the service worker shows: a notification's title, body and the page it opens.
    `tag` per live, so "we're live" replaces "starts in 15 min" instead of piling up."""
    now = now or datetime.now(UTC)
    language = letter.language if letter.language in DAYS else "en"
    subject, lead, _ = TEXTS[letter.kind][language]
    fill = {
        "title": one_line(letter.title) or SHOP[language],
        "minutes": minutes_left(letter.scheduled_at, now),
    }
    return {
        "title": subject.format(**fill),
        "body": lead.format(**fill),
        "url": letter.action_url,
        "tag": f"vitrine-live-{letter.action_url.rsplit('/', 1)[-1]}",
        "lang": language,
        "unsubscribe_url": letter.unsubscribe_url,
        "unsubscribe_label": UNSUBSCRIBE[language],  # the notification's action
    }
