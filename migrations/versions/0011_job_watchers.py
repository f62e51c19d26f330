"""job_watchers: which processes hold a waiter on a job (a long-poll or an event stream),
so a change NOTIFYs only when someone waits for it (PostgreSQL; SQLite wakes in-process).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_watchers",
        sa.Column(
            "job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("watcher", sa.String(100), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_job_watchers_watcher", "job_watchers", ["watcher"])


def downgrade() -> None:
    op.drop_index("ix_job_watchers_watcher", table_name="job_watchers")
    op.drop_table("job_watchers")
