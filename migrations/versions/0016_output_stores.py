"""Outputs that know where they are kept: job_outputs.store names the output store holding
each object, and output_stores counts what each store holds, so changing OUTPUT_STORE never
turns old outputs into silent 404s (they are served from their own store, `serve` says how
many are elsewhere, `outputs migrate` copies them). Outputs kept before this revision have
no store recorded and are taken to be in the configured one.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_outputs", sa.Column("store", sa.Text(), nullable=True))
    op.create_table(
        "output_stores",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("outputs", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("output_stores")
    with op.batch_alter_table("job_outputs", schema=None) as batch_op:
        batch_op.drop_column("store")
