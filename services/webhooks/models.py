"""Tables of the webhooks service.

An endpoint is where an admin wants events POSTed. Each event it is to receive is one row of
`deliveries`, unique per (endpoint, event): that key is what makes an event go to an endpoint at
most once whatever the redeliveries, restarts or replicas. Each try is one row of `attempts`,
the delivery log. The signing secrets are sealed with VITRINE_SECRET_KEY (chassis.secrets).
"""

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)


class EndpointStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # to be tried at `next_attempt_at` (claimed while `claimed_until`)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: every attempt of the schedule failed


endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),  # types, `family.*` or `*`
    sa.Column("allow_personal_data", sa.Boolean, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),  # sealed
    # The secret before the last rotation, also signing until `previous_secret_until`.
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_until", Timestamp),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("disabled_at", Timestamp),
    # Deliveries given up in a row, and since when every attempt has failed (NULL: the last
    # attempt succeeded): what disables an endpoint.
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failing_since", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    # The order deliveries were queued in, which is the order of the bus: a live's next
    # delivery to an endpoint waits for the one before it.
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "endpoint_id",
        UUID(as_uuid=True),
        sa.ForeignKey("endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False),  # also the `webhook-id`
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes every attempt sends
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("claimed_until", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_deliveries_once_per_endpoint"),
)
sa.Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    postgresql_where=deliveries.c.status == DeliveryStatus.PENDING.value,
)
sa.Index(
    "ix_deliveries_queue",
    deliveries.c.endpoint_id,
    deliveries.c.stream_id,
    deliveries.c.id,
    postgresql_where=deliveries.c.status == DeliveryStatus.PENDING.value,
)
sa.Index(  # the attempts in flight, counted per endpoint by each claim
    "ix_deliveries_claimed",
    deliveries.c.endpoint_id,
    deliveries.c.claimed_until,
    postgresql_where=(deliveries.c.status == DeliveryStatus.PENDING.value)
    & deliveries.c.claimed_until.is_not(None),
)
sa.Index("ix_deliveries_log", deliveries.c.endpoint_id, deliveries.c.id.desc())
sa.Index("ix_deliveries_finished", deliveries.c.finished_at)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "delivery_id",
        sa.BigInteger,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempted_at", Timestamp, nullable=False),
    sa.Column("status_code", sa.Integer),  # NULL: no answer (see `error`)
    sa.Column("error", sa.Text),  # what went wrong, never the body or a secret
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

processed_events = processed_events_table(metadata)
sa.Index("ix_processed_events_at", processed_events.c.processed_at)  # pruned by age
outbox = outbox_table(metadata)  # the runtime's relay wants one; this service publishes nothing
