"""Alembic environment of the chat service (its schema, its own version table)."""

from chassis.migrations import run_env
from services.chat.models import ChatBase

run_env(ChatBase.metadata)
