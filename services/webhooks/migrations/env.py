"""Alembic environment of the webhooks service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.webhooks.models import metadata

run_env(metadata)
