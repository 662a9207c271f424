"""Web Push subscriptions: a browser's endpoint and keys beside the e-mail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("push_endpoint", "push_p256dh", "push_auth")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("reminder_subscriptions", sa.Column(name, sa.Text()))


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("reminder_subscriptions", name)
