"""Tables of the notifications service.

Subscribers' addresses are personal data: they live in `reminder_subscriptions` only, and go out
of the service to an admin's GDPR export and nowhere else. Each message a subscriber may get is
one row of `reminder_deliveries`, unique per (recipient, live, kind): that key is what makes a
reminder go at most once whatever the redeliveries, restarts or replicas.
"""

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)


class Channel(enum.StrEnum):
    EMAIL = "email"
    WEBPUSH = "webpush"


class Kind(enum.StrEnum):
    """What a message says."""

    CONFIRM = "confirm"  # double opt-in: "confirm you want reminders"
    STARTING_SOON = "starting_soon"  # "starts in N minutes"
    LIVE = "live"  # "we're live"
    REPLAY = "replay"  # "the replay is ready"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by one process until `claimed_until`
    SENT = "sent"
    SKIPPED = "skipped"  # no longer true when its time came (live started, deleted, moved)
    FAILED = "failed"  # every attempt failed


# What notifications knows of each live, from `stream.*`.
lives = sa.Table(
    "lives",
    metadata,
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled, live, ended, deleted
    sa.Column("scheduled_at", Timestamp),
    sa.Column("started_at", Timestamp),
    sa.Column("replay_ready", sa.Boolean, nullable=False, server_default=sa.false()),
    # The calendar event's SEQUENCE (RFC 5545): bumped whenever the time changes.
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    # Set by an admin for this live; else the service's default.
    sa.Column("lead_minutes", sa.Integer),
    # The live's own `updated_at` last applied: an older event arriving late changes nothing.
    sa.Column("version", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

reminder_subscriptions = sa.Table(
    "reminder_subscriptions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    # NULL: "follow the shop", every live to come.
    sa.Column("stream_id", UUID(as_uuid=True)),
    # Who gets it, one value per address: "email:<lower-cased address>" or "webpush:<endpoint>".
    # Two subscriptions of one address (a live, and the whole shop) share it, and so get each
    # message once.
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("email", sa.Text),  # lower-cased
    sa.Column("user_id", sa.Text),  # the signed-in subscriber, if any
    # A browser's push subscription (PushSubscription.toJSON()): where to post, and its keys.
    sa.Column("push_endpoint", sa.Text),
    sa.Column("push_p256dh", sa.Text),
    sa.Column("push_auth", sa.Text),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("confirmed_at", Timestamp),  # NULL until the double opt-in is done
    sa.Index(
        "ux_reminder_subscriptions_one_per_address",
        "recipient",
        "stream_id",
        unique=True,
        postgresql_nulls_not_distinct=True,
    ),
    sa.Index("ix_reminder_subscriptions_stream", "stream_id"),
    # A person's rows, found by an admin's GDPR export or erasure.
    sa.Index(
        "ix_reminder_subscriptions_email", "email", postgresql_where=sa.text("email IS NOT NULL")
    ),
    sa.Index(
        "ix_reminder_subscriptions_user",
        "user_id",
        postgresql_where=sa.text("user_id IS NOT NULL"),
    ),
)

# "Not this live": an address that unsubscribed from one live, so that following the shop does
# not plan that live for it again. Personal data like the subscriptions: exported and erased
# with them.
reminder_optouts = sa.Table(
    "reminder_optouts",
    metadata,
    sa.Column("recipient", sa.Text, primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

# How many confirmations an address was sent in its current window of a day: someone asking
# for reminders to somebody else's address, for however many lives, cannot make it a flood.
confirmation_budgets = sa.Table(
    "confirmation_budgets",
    metadata,
    sa.Column("recipient", sa.Text, primary_key=True),
    sa.Column("window_start", Timestamp, nullable=False),
    sa.Column("sent", sa.Integer, nullable=False),
)

reminder_deliveries = sa.Table(
    "reminder_deliveries",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "subscription_id",
        UUID(as_uuid=True),
        sa.ForeignKey("reminder_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("stream_id", UUID(as_uuid=True)),  # NULL: a shop-wide subscription's confirmation
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", Timestamp, nullable=False),
    # When it was first due: failures are tried again until SEND_GIVE_UP_AFTER_S past it.
    sa.Column("first_due_at", Timestamp),
    # "Starts soon": the live's time it was planned for. A live moved after it went out gets
    # it again for the new time.
    sa.Column("scheduled_for", Timestamp),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_until", Timestamp),
    sa.Column("sent_at", Timestamp),
    sa.Column("last_error", sa.Text),  # the server's reply, never an address
    sa.Index(
        "ux_reminder_deliveries_once",
        "recipient",
        "stream_id",
        "kind",
        unique=True,
        postgresql_nulls_not_distinct=True,
    ),
    sa.Index(
        "ix_reminder_deliveries_due",
        "due_at",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    ),
    sa.Index("ix_reminder_deliveries_stream", "stream_id", "kind"),
    # An unsubscription's cascade, and a person's export, find its messages by this.
    sa.Index("ix_reminder_deliveries_subscription", "subscription_id"),
)

processed_events = processed_events_table(metadata)
# The service publishes nothing; the chassis runtime expects an outbox all the same.
outbox = outbox_table(metadata)
