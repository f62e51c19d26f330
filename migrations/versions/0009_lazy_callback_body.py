"""callback_deliveries.body may be NULL: the outbox row is written with the terminal
transition (one statement on PostgreSQL), its body built at the first delivery.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE callback_deliveries SET body = '' WHERE body IS NULL")
    with op.batch_alter_table("callback_deliveries", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
