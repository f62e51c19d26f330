"""Per-client abuse limits: creation-rate windows, and an index for the unfinished cap.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('queued', 'processing')"


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_rate_windows_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "window_start", name=op.f("pk_rate_windows")),
    )
    op.create_index(
        "ix_jobs_client_unfinished",
        "jobs",
        ["client_id"],
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_client_unfinished", table_name="jobs")
    op.drop_table("rate_windows")
