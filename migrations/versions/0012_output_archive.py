"""The output archive: a job's archive status and its stored outputs (jobs.archive_status,
jobs.outputs), the archive queue (output_archives: one row per succeeded job, claimed with a
lease), the record of every stored object (job_outputs), and the archive's counters
(archive_counts: stored objects, their bytes, failures by reason; kept by every settle and
deletion, so ops never scan job_outputs).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
PENDING = "status = 'pending'"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("archive_status", sa.String(20), nullable=True))
    op.add_column("jobs", sa.Column("outputs", Json, nullable=True))
    op.create_table(
        "output_archives",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            BigId,
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_output_archives_due",
        "output_archives",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.create_table(
        "job_outputs",
        sa.Column("job_id", BigId, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("n", sa.Integer(), primary_key=True),
        sa.Column("provider_url", sa.Text(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "archive_counts",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_counts")
    op.drop_table("job_outputs")
    op.drop_index("ix_output_archives_due", table_name="output_archives")
    op.drop_table("output_archives")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("outputs")
        batch_op.drop_column("archive_status")
