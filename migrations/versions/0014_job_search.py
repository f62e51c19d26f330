"""Finding jobs: partial indexes on the provider's id and on the client's Idempotency-Key
(alone, so ops can search every client's jobs by it; the unique key on (client_id,
idempotency_key) serves one client's own search); and (client_id, status, id) for one
client's jobs in one state, newest first (without it SQLite reads every job in that state,
whoever's, to find a small client's few).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _partial(name: str, column: str) -> None:
    where = sa.text(f"{column} IS NOT NULL")
    op.create_index(name, "jobs", [column], postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    _partial("ix_jobs_provider_id", "provider_id")
    _partial("ix_jobs_idempotency_key", "idempotency_key")
    op.create_index("ix_jobs_client_status_id", "jobs", ["client_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_client_status_id", table_name="jobs")
    op.drop_index("ix_jobs_idempotency_key", table_name="jobs")
    op.drop_index("ix_jobs_provider_id", table_name="jobs")
