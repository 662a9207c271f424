"""Tables of the streams service and the API schemas around them (a table is never the API)."""

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table
from contracts.streams import Platform, StreamStatus, StreamView

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
SETTINGS_ROW_ID = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def _string_enum(enum_type: type[enum.Enum], length: int) -> sa.Enum:
    """A VARCHAR holding the enum's values (no PostgreSQL enum type to migrate)."""
    return sa.Enum(
        enum_type,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class StreamsBase(SQLModel, registry=registry()):
    """Own registry, so these tables never mix with another service's metadata."""


Timestamp = sa.DateTime(timezone=True)


class LiveStream(StreamsBase, table=True):
    __tablename__ = "live_streams"
    # A generated key opens one live; a Restream key is the account's, shared by its lives.
    __table_args__ = (
        sa.Index(
            "uq_live_streams_stream_key_hash",
            "stream_key_hash",
            unique=True,
            postgresql_where=sa.text("platform <> 'restream'"),
        ),
    )

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    title: str = Column(max_length=TITLE_MAX)
    description: str | None = Column(default=None, max_length=DESCRIPTION_MAX)
    status: StreamStatus = Column(
        default=StreamStatus.SCHEDULED, sa_type=_string_enum(StreamStatus, 16), index=True
    )
    platform: Platform = Column(sa_type=_string_enum(Platform, 32))
    scheduled_at: datetime | None = Column(default=None, sa_type=Timestamp)
    started_at: datetime | None = Column(default=None, sa_type=Timestamp)
    ended_at: datetime | None = Column(default=None, sa_type=Timestamp)
    stream_key_hash: str = Column(max_length=64, index=True)
    stream_key_sealed: str
    playback_id: str = Column(max_length=64, unique=True)
    ingest_url: str | None = None
    playback_url: str | None = None
    replay_url: str | None = None
    provider_ref: str | None = None
    provider_state: str | None = Column(default=None, max_length=64)
    # When the provider's state was last reported, so a late report cannot overwrite a newer one.
    provider_state_at: datetime | None = Column(default=None, sa_type=Timestamp)
    # The encoder left: the live ends at this moment unless it comes back (restart-safe grace).
    end_deadline: datetime | None = Column(default=None, sa_type=Timestamp, index=True)
    # The last provider callback or webhook about this live, for the admin's troubleshooting.
    last_webhook: dict[str, Any] | None = Column(default=None, sa_type=JSONB)
    # The last publish refused with one of this live's keys (guide: « Le stream ne démarre pas »).
    last_refused_publish: dict[str, Any] | None = Column(default=None, sa_type=JSONB)
    # What the provider told of the recording: its takes and length (services/streams/recording).
    recording: dict[str, Any] | None = Column(default=None, sa_type=JSONB)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class LiveStreamSettings(StreamsBase, table=True):
    """One row: the platform new lives are created on, its settings and its sealed secrets."""

    __tablename__ = "live_stream_settings"

    id: int = Column(default=SETTINGS_ROW_ID, primary_key=True)
    platform: Platform = Column(sa_type=_string_enum(Platform, 32))
    config: dict[str, Any] = Column(default_factory=dict, sa_type=JSONB)
    secrets_sealed: dict[str, str] = Column(default_factory=dict, sa_type=JSONB)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class ProviderWebhook(StreamsBase, table=True):
    """A provider webhook already handled: a redelivery of the same id changes nothing."""

    __tablename__ = "provider_webhooks"

    source: str = Column(primary_key=True, max_length=32)
    webhook_id: str = Column(primary_key=True, max_length=200)
    stream_id: uuid.UUID | None = None
    type: str = Column(max_length=100)
    outcome: str = Column(max_length=32)
    received_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class IvsTimedMetadata(StreamsBase, table=True):
    """The last featured-product event inserted into a live's video (AWS IVS timed metadata).
    Replicas read it under a row lock, so an event older than one shown is never inserted after
    it. No foreign key to `live_streams`: its check would share-lock the live while IVS is called.
    """

    __tablename__ = "ivs_timed_metadata"

    stream_id: uuid.UUID = Column(primary_key=True)
    # None until an event is inserted (the row exists first, to be locked).
    occurred_at: datetime | None = Column(default=None, sa_type=Timestamp)
    event_id: uuid.UUID | None = None  # orders events of the same moment
    pushed_at: datetime | None = Column(default=None, sa_type=Timestamp)


class RetiredStreamKey(StreamsBase, table=True):
    """A key replaced by rotate-key: it opens nothing, but an encoder still using it is told why
    (and the live's admin sees it)."""

    __tablename__ = "retired_stream_keys"

    key_hash: str = Column(primary_key=True, max_length=64)
    stream_id: uuid.UUID = Column(index=True)
    retired_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class RefusedPublish(StreamsBase, table=True):
    """A publish nginx-rtmp was told to refuse: the last ones, whatever the key (an unknown key
    belongs to no live, so the platform's settings show it)."""

    __tablename__ = "refused_publishes"

    id: int | None = Column(default=None, primary_key=True)
    refused_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    stream_id: uuid.UUID | None = None
    key_tail: str = Column(max_length=8)  # the key's last characters, never more
    reason: str = Column(max_length=64)
    app: str | None = Column(default=None, max_length=64)


outbox = outbox_table(StreamsBase.metadata)
processed_events = processed_events_table(StreamsBase.metadata)


# --- API schemas ---------------------------------------------------------------------------------


# Inputs strip whitespace first, so a blank title fails `min_length`.
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
# A blank description is no description.
Description = Annotated[
    str, Field(max_length=DESCRIPTION_MAX), AfterValidator(lambda value: value or None)
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StreamCreate(_Input):
    title: Title
    description: Description | None = None
    scheduled_at: AwareDatetime | None = None


class StreamUpdate(_Input):
    """Only the fields sent change; `description` and `scheduled_at` may be cleared with null."""

    title: Title | None = None
    description: Description | None = None
    scheduled_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _at_least_one_field(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("title cannot be null")
        return self


class StreamPublic(StreamView):
    """What anyone sees of a live: exactly the event contract's view."""


class ObsSettings(BaseModel):
    """What to paste into OBS → Settings → Stream (service: Custom)."""

    server: str | None
    stream_key: str


class LastWebhook(BaseModel):
    """The last thing the video provider told us about a live (guide: « Dépannage »)."""

    source: str
    type: str
    id: str | None = None
    received_at: datetime
    outcome: str = Field(description="applied, ignored (late or no change), duplicate, refused")


class RefusedPublishView(BaseModel):
    """A publish refused: « key …1234, 14:02, ended live »."""

    at: datetime
    key: str = Field(description="the key's last 4 characters only, e.g. …1234")
    reason: str = Field(description="unknown key, rotated key, ended live, wrong app …")
    app: str | None = Field(default=None, description="the RTMP application published to")


class TakeView(BaseModel):
    """One stretch of the recording: the encoder publishing from `started_at` to `ended_at`."""

    started_at: datetime
    ended_at: datetime | None = None
    video_end_s: float | None = Field(
        default=None, description="where this take ends in the video file, when measured"
    )


class RecordingView(BaseModel):
    """The recording's takes in order (the gaps between them are not in the file) and the
    file's length, so a replay's timeline can be put in the video's own time."""

    started_at: datetime | None
    duration_s: float | None = Field(description="the file's length, once known")
    takes: list[TakeView]


class StreamAdmin(StreamPublic):
    """What an admin sees: the public view plus how to publish to it and how it is going."""

    stream_key: str
    ingest_url: str | None = None
    playback_id: str
    provider_state: str | None = None
    provider_state_at: datetime | None = None
    end_deadline: datetime | None = Field(
        default=None, description="the encoder left: the live ends then unless it comes back"
    )
    last_webhook: LastWebhook | None = None
    last_refused_publish: RefusedPublishView | None = None
    recording: RecordingView | None = None
    obs: ObsSettings


class StreamReplay(StreamPublic):
    """A live to watch again: its public view and how its recording is laid out."""

    recording: RecordingView | None = None


SettingName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ConfigValue = Annotated[str, Field(max_length=2048)] | int | float | bool | None


class SettingsWrite(_Input):
    """Replaces platform and config; secrets left out (or sent back masked) keep their value,
    secrets sent as null or "" are removed."""

    platform: Platform
    config: dict[SettingName, ConfigValue] = Field(default_factory=dict, max_length=32)
    secrets: dict[SettingName, Annotated[str, Field(max_length=4096)] | None] = Field(
        default_factory=dict, max_length=32
    )


class SettingsRead(BaseModel):
    platform: Platform
    config: dict[str, ConfigValue]
    secrets: dict[str, str | None] = Field(description="masked: never the stored value")
    supported_platforms: list[Platform]
    updated_at: datetime | None = None
    last_refused_publish: RefusedPublishView | None = Field(
        default=None, description="the last publish nginx-rtmp was told to refuse, any key"
    )
