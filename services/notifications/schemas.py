"""What the notifications routes take and give. An address goes in; it never comes back out,
except to an admin's GDPR export."""

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

Language = Literal["fr", "en"]
EMAIL_MAX = 254  # RFC 5321's limit on a path
ENDPOINT_MAX = 1024  # push services' endpoints are a few hundred characters
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")


def time_zone_name(name: str) -> str:
    """An IANA time zone known here (`Europe/Paris`), or ValueError."""
    if len(name) > 64 or not TIME_ZONE.match(name):
        raise ValueError("not a time zone name such as Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _decoded(value: str, *, length: int) -> bytes:
    """Base64url (padded or not) of exactly `length` bytes, or ValueError."""
    if len(value) > 2 * length or not BASE64URL.match(value):
        raise ValueError(f"not base64url of {length} bytes")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        raise ValueError(f"not base64url of {length} bytes") from None
    if len(raw) != length:
        raise ValueError(f"not base64url of {length} bytes")
    return raw


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: Annotated[str, Field(max_length=128)]  # the browser's P-256 public key
    auth: Annotated[str, Field(max_length=32)]  # its 16-byte authentication secret

    @field_validator("p256dh")
    @classmethod
    def _a_p256_point(cls, value: str) -> str:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _decoded(value, length=65))
        except ValueError:
            raise ValueError("not a P-256 public key (65 bytes, base64url)") from None
        return value

    @field_validator("auth")
    @classmethod
    def _sixteen_bytes(cls, value: str) -> str:
        _decoded(value, length=16)
        return value


class PushSubscription(BaseModel):
    """What the browser's `PushSubscription.toJSON()` gives."""

    model_config = ConfigDict(extra="ignore")  # expirationTime and whatever browsers add

    endpoint: Annotated[str, Field(max_length=ENDPOINT_MAX)]
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            raise ValueError("a push endpoint is an https:// URL")
        return value


class ReminderRequest(BaseModel):
    """An e-mail reminder (a signed-in user may leave out `email`: their token's is used), or
    a browser's Web Push subscription."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "webpush"] = "email"
    email: Annotated[EmailStr, Field(max_length=EMAIL_MAX)] | None = None
    subscription: PushSubscription | None = None
    language: Language | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else time_zone_name(value)

    @model_validator(mode="after")
    def _one_channel(self) -> Self:
        if self.channel == "webpush" and (self.subscription is None or self.email is not None):
            raise ValueError("webpush takes a `subscription` and no `email`")
        if self.channel == "email" and self.subscription is not None:
            raise ValueError("email takes no `subscription`")
        return self


class ReminderPublic(BaseModel):
    """A subscription as its subscriber sees it (no address)."""

    id: UUID
    stream_id: UUID | None  # null: every live of the shop
    channel: str
    status: Literal["pending_confirmation", "confirmed"]
    language: Language
    time_zone: str
    # Web Push only: the browser keeps it to unsubscribe (e-mails carry theirs in each message).
    unsubscribe_token: str | None = None


class SampleReminder(BaseModel):
    """An admin's test: the live's "starts in N minutes", sent now to one address."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[EmailStr, Field(max_length=EMAIL_MAX)]
    language: Language = "fr"
    time_zone: Annotated[str, Field(max_length=64)] = "Europe/Paris"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return time_zone_name(value)


class TestResult(BaseModel):
    sent: bool
    reason: str | None = None  # the mail server's answer when it did not take the message


class LeadTime(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # null: the service's default (REMINDER_LEAD_MINUTES)
    lead_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None


class LiveSubscribers(BaseModel):
    """How many will hear of a live: counts only, for an admin."""

    stream_id: UUID
    subscribers: int  # confirmed, for this live
    by_channel: dict[str, int]  # of those, how many by e-mail, how many by Web Push
    pending_confirmation: int
    shop_followers: int  # confirmed followers of the whole shop
    lead_minutes: int
    sent: dict[str, int]  # messages sent so far, by kind


class DeliveryExport(BaseModel):
    stream_id: UUID | None
    kind: str
    status: str
    due_at: datetime
    sent_at: datetime | None


class SubscriptionExport(BaseModel):
    """Everything kept about one subscription (GDPR access)."""

    id: UUID
    channel: str
    email: str | None
    user_id: str | None
    push_endpoint: str | None
    stream_id: UUID | None
    language: str
    time_zone: str
    created_at: datetime
    confirmed_at: datetime | None
    deliveries: list[DeliveryExport]


class OptOutExport(BaseModel):
    """A live the person unsubscribed from (kept so following the shop does not plan it)."""

    stream_id: UUID
    at: datetime


class PersonalDataExport(BaseModel):
    email: str | None  # the address asked about, if any
    user_id: str | None  # the user id asked about, if any
    subscriptions: list[SubscriptionExport]
    unsubscribed_lives: list[OptOutExport]
    confirmations_sent_lately: int  # in the address's current day (the budget against floods)


class Erased(BaseModel):
    subscriptions_deleted: int
