"""Every client's unfinished-job counters exist (at zero if need be), so a creation can
lock them all and count exactly without a lock held across round trips.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SHARDS = 16


def upgrade() -> None:
    op.execute(
        "INSERT INTO status_counts (client_id, status, shard, n) "
        "SELECT c.id, s.status, g.shard, 0 FROM clients c "
        "CROSS JOIN (SELECT 'queued' AS status UNION ALL SELECT 'processing') s "
        "CROSS JOIN (" + " UNION ALL ".join(f"SELECT {i} AS shard" for i in range(SHARDS)) + ") g "
        "WHERE NOT EXISTS (SELECT 1 FROM status_counts x WHERE x.client_id = c.id "
        "AND x.status = s.status AND x.shard = g.shard)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM status_counts WHERE n = 0")
