"""Alembic environment of the notifications service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.notifications.models import metadata

run_env(metadata)
