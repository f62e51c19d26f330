"""The per-minute series ops chart (stats_minutes: each process adds what it counted, by
minute, series and label) and the generations the provider accepted per client and day
(usage_days).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stats_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("series", sa.String(40), primary_key=True),
        sa.Column("label", sa.String(40), primary_key=True),
        sa.Column("n", sa.Float(), nullable=False),
    )
    op.create_table(
        "usage_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column(
            "client_id",
            BigId,
            sa.ForeignKey("clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("generations", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_days")
    op.drop_table("stats_minutes")
