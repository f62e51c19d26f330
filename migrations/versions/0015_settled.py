"""One finish line: when a job settled (terminal, and its outputs no longer being kept), and
why its outputs are not kept, or not yet (the archive's last reason). Jobs that settled
before this revision take the time their archive settled, else the time they finished.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TERMINAL = "('succeeded', 'failed', 'timed_out', 'canceled')"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("archive_error", sa.Text(), nullable=True))
    op.execute(
        f"""
        UPDATE jobs SET
            settled_at = COALESCE(
                (SELECT a.updated_at FROM output_archives a
                 WHERE a.job_id = jobs.id AND a.status <> 'pending'),
                completed_at),
            archive_error = (SELECT a.last_error FROM output_archives a WHERE a.job_id = jobs.id)
        WHERE status IN {TERMINAL}
          AND (archive_status IS NULL OR archive_status <> 'pending')
        """
    )
    op.execute(
        """
        UPDATE jobs SET
            archive_error = (SELECT a.last_error FROM output_archives a WHERE a.job_id = jobs.id)
        WHERE archive_status = 'pending'
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("archive_error")
        batch_op.drop_column("settled_at")
