"""One partial index per claim query; a partial index for retention.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('queued', 'processing')"
QUEUED = "status = 'queued'"
PROCESSING = "status = 'processing'"
FINISHED = "status IN ('succeeded', 'failed', 'timed_out', 'canceled')"


def _partial(name: str, columns: list[str], where: str) -> None:
    op.create_index(
        name, "jobs", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
    )


def upgrade() -> None:
    _partial("ix_jobs_submit_due", ["next_poll_at", "id"], QUEUED)
    _partial("ix_jobs_poll_due", ["next_poll_at", "id"], PROCESSING)
    _partial("ix_jobs_finished_completed_at", ["completed_at"], FINISHED)
    op.drop_index("ix_jobs_due_unfinished", table_name="jobs")


def downgrade() -> None:
    _partial("ix_jobs_due_unfinished", ["status", "next_poll_at"], UNFINISHED)
    op.drop_index("ix_jobs_finished_completed_at", table_name="jobs")
    op.drop_index("ix_jobs_poll_due", table_name="jobs")
    op.drop_index("ix_jobs_submit_due", table_name="jobs")
