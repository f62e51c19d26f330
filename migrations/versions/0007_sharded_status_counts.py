"""Shard status_counts, so concurrent transitions of one client do not queue on one row.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create(sharded: bool) -> None:
    columns = [
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    ]
    keys = ["client_id", "status"]
    if sharded:
        columns.append(sa.Column("shard", sa.Integer(), nullable=False))
        keys.append("shard")
    op.create_table(
        "status_counts",
        *columns,
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_status_counts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*keys, name=op.f("pk_status_counts")),
    )
    shard = ", 0" if sharded else ""
    op.execute(
        f"INSERT INTO status_counts (client_id, status{', shard' if sharded else ''}, n) "
        f"SELECT client_id, status{shard}, count(*) FROM jobs GROUP BY client_id, status"
    )


def upgrade() -> None:
    op.drop_table("status_counts")
    _create(sharded=True)


def downgrade() -> None:
    op.drop_table("status_counts")
    _create(sharded=False)
