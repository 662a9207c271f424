"""Alembic environment of the analytics service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.analytics.models import metadata

run_env(metadata)
