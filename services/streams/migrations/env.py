"""Alembic environment of the streams service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.streams.models import StreamsBase

run_env(StreamsBase.metadata)
