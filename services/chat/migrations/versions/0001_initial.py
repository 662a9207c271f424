"""Chat messages, bans, per-live chat options, lives' states, processed events and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The service's schema is the connection's search_path, so no table names a schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_STATUSES = ("visible", "held", "deleted")
LIVE_STATES = ("scheduled", "live", "ended", "deleted")
BAN_SCOPES = ("live", "shop")
BLOCKED_WORDS_ACTIONS = ("reject", "hold")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    position = sa.Sequence("live_stream_chat_messages_seq")
    op.execute(sa.schema.CreateSequence(position))
    op.create_table(
        "live_stream_chat_messages",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "seq",
            sa.BigInteger(),
            nullable=False,
            unique=True,
            server_default=position.next_value(),
        ),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_pinned", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moderated_by", sa.String(255)),
        sa.Column("moderated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            _one_of("status", MESSAGE_STATUSES), name="live_stream_chat_messages_status"
        ),
    )
    op.create_index(
        "ix_live_stream_chat_messages_stream_seq",
        "live_stream_chat_messages",
        ["stream_id", "seq"],
    )
    op.create_index(
        "ux_live_stream_chat_messages_one_pin",
        "live_stream_chat_messages",
        ["stream_id"],
        unique=True,
        postgresql_where=sa.text("is_pinned"),
    )

    op.create_table(
        "live_stream_chat_bans",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("stream_id", sa.Uuid()),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(500)),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_by", sa.String(255)),
        sa.Column("lifted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(_one_of("scope", BAN_SCOPES), name="live_stream_chat_bans_scope"),
        sa.CheckConstraint(
            "scope = 'shop' OR stream_id IS NOT NULL", name="live_stream_chat_bans_live_named"
        ),
    )
    op.create_index("ix_live_stream_chat_bans_user", "live_stream_chat_bans", ["user_id"])

    op.create_table(
        "live_stream_chat_options",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("slow_mode_s", sa.Integer(), nullable=False),
        sa.Column("blocked_words", JSONB(), nullable=False),
        sa.Column("blocked_words_action", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "slow_mode_s BETWEEN 0 AND 3600", name="live_stream_chat_options_slow_mode"
        ),
        sa.CheckConstraint(
            _one_of("blocked_words_action", BLOCKED_WORDS_ACTIONS),
            name="live_stream_chat_options_action",
        ),
    )

    op.create_table(
        "live_stream_states",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_one_of("status", LIVE_STATES), name="live_stream_states_status"),
    )

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope", JSONB(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "outbox_pending", "outbox", ["seq"], postgresql_where=sa.text("published_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("processed_events")
    op.drop_table("live_stream_states")
    op.drop_table("live_stream_chat_options")
    op.drop_table("live_stream_chat_bans")
    op.drop_table("live_stream_chat_messages")
    op.execute(sa.schema.DropSequence(sa.Sequence("live_stream_chat_messages_seq")))
