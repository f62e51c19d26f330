"""status_counts: exact jobs per client and state, for stats and the state gauge; an
index for dead callback deliveries.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_counts",
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_status_counts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "status", name=op.f("pk_status_counts")),
    )
    op.create_index(
        "ix_callback_deliveries_dead",
        "callback_deliveries",
        ["client_id"],
        postgresql_where=sa.text("status = 'dead'"),
        sqlite_where=sa.text("status = 'dead'"),
    )
    op.execute(
        "INSERT INTO status_counts (client_id, status, n) "
        "SELECT client_id, status, count(*) FROM jobs GROUP BY client_id, status"
    )


def downgrade() -> None:
    op.drop_index("ix_callback_deliveries_dead", table_name="callback_deliveries")
    op.drop_table("status_counts")
