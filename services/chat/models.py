"""Tables of the chat service and the API schemas around them (a table is never the API)."""

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Self

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table
from chassis.pages import Page
from contracts.chat import BanScope, ChatMessage
from services.chat import domain

USER_ID_MAX = 255
DISPLAY_NAME_MAX = 80
REASON_MAX = 500
BAN_MAX_S = 365 * 24 * 3600
# Raw input is bounded before cleaning so a huge body is refused cheaply.
RAW_MESSAGE_MAX = 4 * domain.MESSAGE_MAX


def utcnow() -> datetime:
    return datetime.now(UTC)


class MessageStatus(enum.StrEnum):
    VISIBLE = "visible"
    HELD = "held"  # waits for a moderator (blocked word, action "hold")
    DELETED = "deleted"


class LiveState(enum.StrEnum):
    """What chat knows of a live, from `stream.*`; a state never goes back."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    DELETED = "deleted"


class BlockedWordsAction(enum.StrEnum):
    REJECT = "reject"
    HOLD = "hold"


def _string_enum(enum_type: type[enum.Enum], length: int) -> sa.Enum:
    """A VARCHAR holding the enum's values (no PostgreSQL enum type to migrate)."""
    return sa.Enum(
        enum_type,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=False,
    )


class ChatBase(SQLModel, registry=registry()):
    """Own registry, so these tables never mix with another service's metadata."""


Timestamp = sa.DateTime(timezone=True)
# Positions in the history: a held message gets a new one when approved (it is posted then).
message_position = sa.Sequence("live_stream_chat_messages_seq")


class LiveStreamChatMessage(ChatBase, table=True):
    __tablename__ = "live_stream_chat_messages"
    __table_args__ = (
        sa.Index("ix_live_stream_chat_messages_stream_seq", "stream_id", "seq"),
        sa.Index(
            "ux_live_stream_chat_messages_one_pin",
            "stream_id",
            unique=True,
            postgresql_where=sa.text("is_pinned"),
        ),
    )

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    seq: int = Column(
        sa_column=sa.Column(
            sa.BigInteger,
            message_position,
            server_default=message_position.next_value(),
            nullable=False,
            unique=True,
        )
    )
    stream_id: uuid.UUID
    user_id: str = Column(max_length=USER_ID_MAX)
    display_name: str = Column(max_length=DISPLAY_NAME_MAX)
    message: str = Column(max_length=domain.MESSAGE_MAX)
    status: MessageStatus = Column(
        default=MessageStatus.VISIBLE, sa_type=_string_enum(MessageStatus, 16)
    )
    is_pinned: bool = False
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    moderated_by: str | None = Column(default=None, max_length=USER_ID_MAX)
    moderated_at: datetime | None = Column(default=None, sa_type=Timestamp)


class LiveStreamChatBan(ChatBase, table=True):
    """A ban (`until` null) or a timeout, for one live or the whole shop; lifting keeps the row."""

    __tablename__ = "live_stream_chat_bans"
    __table_args__ = (sa.Index("ix_live_stream_chat_bans_user", "user_id"),)

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Column(max_length=USER_ID_MAX)
    stream_id: uuid.UUID | None = None
    scope: BanScope = Column(sa_type=_string_enum(BanScope, 8))
    until: datetime | None = Column(default=None, sa_type=Timestamp)
    reason: str | None = Column(default=None, max_length=REASON_MAX)
    created_by: str = Column(max_length=USER_ID_MAX)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    lifted_by: str | None = Column(default=None, max_length=USER_ID_MAX)
    lifted_at: datetime | None = Column(default=None, sa_type=Timestamp)


class LiveStreamChatOptions(ChatBase, table=True):
    __tablename__ = "live_stream_chat_options"

    stream_id: uuid.UUID = Column(primary_key=True)
    enabled: bool = True
    slow_mode_s: int = 0
    blocked_words: list[str] = Column(default_factory=list, sa_type=JSONB)
    blocked_words_action: BlockedWordsAction = Column(
        default=BlockedWordsAction.REJECT, sa_type=_string_enum(BlockedWordsAction, 8)
    )
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class LiveStreamState(ChatBase, table=True):
    """Chat's own copy of each live's status, fed by `stream.*` events."""

    __tablename__ = "live_stream_states"

    stream_id: uuid.UUID = Column(primary_key=True)
    status: LiveState = Column(sa_type=_string_enum(LiveState, 16))
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


outbox = outbox_table(ChatBase.metadata)
processed_events = processed_events_table(ChatBase.metadata)


# --- API schemas ---------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatPost(_Input):
    stream_id: uuid.UUID
    message: str = Field(max_length=RAW_MESSAGE_MAX)

    @field_validator("message")
    @classmethod
    def _plain_text(cls, message: str) -> str:
        return domain.clean_message(message)


class ChatPage(Page[ChatMessage]):
    """A page of history, oldest first; `next_cursor` fetches the older page (null: no more)."""

    next_before: str | None = Field(
        deprecated=True, description="the same as `next_cursor`, for one release"
    )


class ChatOptionsPublic(BaseModel):
    enabled: bool
    slow_mode_s: int


class ChatOptionsModerator(ChatOptionsPublic):
    blocked_words: list[str]
    blocked_words_action: BlockedWordsAction


class ChatOptionsUpdate(_Input):
    """Only the fields sent change."""

    enabled: bool | None = None
    slow_mode_s: int | None = Field(None, ge=0, le=domain.SLOW_MODE_MAX_S)
    blocked_words: list[Annotated[str, Field(max_length=domain.BLOCKED_WORD_MAX * 2)]] | None = (
        Field(None, max_length=domain.BLOCKED_WORDS_MAX)
    )
    blocked_words_action: BlockedWordsAction | None = None

    @field_validator("blocked_words")
    @classmethod
    def _clean_words(cls, words: list[str] | None) -> list[str] | None:
        return None if words is None else domain.clean_blocked_words(words)

    @model_validator(mode="after")
    def _at_least_one_field(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one option to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class BanCreate(_Input):
    """`duration_s` makes a timeout; without it the ban lasts until lifted."""

    user_id: str = Field(min_length=1, max_length=USER_ID_MAX)
    stream_id: uuid.UUID | None = None
    scope: BanScope = BanScope.LIVE
    duration_s: int | None = Field(None, ge=1, le=BAN_MAX_S)
    reason: str | None = Field(None, max_length=REASON_MAX)

    @model_validator(mode="after")
    def _live_bans_name_the_live(self) -> Self:
        if self.scope is BanScope.LIVE and self.stream_id is None:
            raise ValueError("a ban for one live needs its stream_id")
        return self


class BanPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: str
    stream_id: uuid.UUID | None
    scope: BanScope
    until: datetime | None
    reason: str | None
    created_by: str
    created_at: datetime
