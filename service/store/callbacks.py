"""The callback outbox: deliveries claimed with a lease, each attempt recorded (on the
outbox row, as a job event, and as the job's callback status) in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from service.domain import callbacks
from service.store import queries as q
from service.store.db import Database
from service.store.records import Delivery, delivery_from_row, job_from_row
from service.store.tables import callback_deliveries


class CallbackStore:
    def __init__(self, db: Database, changed: Callable[[int], None] = lambda _job_id: None) -> None:
        """`changed(job_id)`: after an attempt or a replay changed the job (waiters)."""
        self.db = db
        self._changed = changed

    async def claim_deliveries(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        stmt = q.claim_deliveries(q.Lease(now, owner, lease_until, limit))
        return await self.db.run(
            lambda conn: [delivery_from_row(r) for r in conn.execute(stmt).all()]
        )

    async def with_body(self, delivery: Delivery, now: datetime) -> Delivery:
        """The delivery with its body: built from the terminal job at the first attempt and
        kept, so every later attempt sends the same bytes (a racing builder's wins)."""
        if delivery.body is not None:
            return delivery

        def tx(conn: Connection) -> Delivery:
            job_row = conn.execute(q.get_job(delivery.job_id)).one()
            _event_type, body = callbacks.payload(job_from_row(job_row), now)
            d = callback_deliveries
            conn.execute(
                update(d).where(d.c.id == delivery.id, d.c.body.is_(None)).values(body=body)
            )
            return delivery_from_row(conn.execute(q.get_delivery_of_job(delivery.job_id)).one())

        return await self.db.run(tx)

    async def finish_attempt(
        self, delivery: Delivery, owner: str, now: datetime, attempt: callbacks.Attempt
    ) -> Delivery | None:
        """Record one attempt: the outbox row (compare-and-set on the claim), the attempt as
        a job event, and the job's callback status, in one transaction. None when another
        notifier has taken the delivery over."""
        values: dict[str, Any] = {
            "status": attempt.outcome,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
            "next_attempt_at": attempt.next_attempt_at,
            "updated_at": now,
        }
        if attempt.advance:
            values["schedule_step"] = delivery.schedule_step + 1
        if attempt.outcome == callbacks.DELIVERED:
            values["delivered_at"] = now
        postgresql = self.db.is_postgresql
        event = {
            "webhook_id": delivery.webhook_id,
            "attempt": delivery.attempts + 1,
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
            "outcome": attempt.outcome,
            "next_attempt_at": (
                attempt.next_attempt_at.isoformat() if attempt.next_attempt_at else None
            ),
        }

        def tx(conn: Connection) -> Delivery | None:
            row = conn.execute(q.finish_attempt(delivery.id, owner, values)).first()
            if row is None:
                return None
            conn.execute(
                q.insert_event(delivery.job_id, now, "callback_attempt", "notifier", event)
            )
            conn.execute(q.set_callback_status(delivery.job_id, row.status, now))
            if postgresql:  # a new version of the job, for waiters on any replica
                conn.execute(q.notify_watchers(delivery.job_id))
            return delivery_from_row(row)

        finished = await self.db.run(tx)
        if finished is not None:
            self._changed(delivery.job_id)
        return finished

    async def replay_callback(
        self, job_id: int, now: datetime, key_prefix: str = ""
    ) -> Delivery | None:
        """Send the job's event again: the schedule from the start, the same webhook-id;
        the event names the key that asked (`key_prefix`)."""
        postgresql = self.db.is_postgresql

        def tx(conn: Connection) -> Delivery | None:
            row = conn.execute(q.replay_delivery(job_id, now)).first()
            if row is None:
                return None
            conn.execute(
                q.insert_event(
                    job_id,
                    now,
                    "callback_replay",
                    "api",
                    {"webhook_id": row.webhook_id, "key": key_prefix},
                )
            )
            conn.execute(q.set_callback_status(job_id, callbacks.PENDING, now))
            if postgresql:
                conn.execute(q.notify_workers(q.WAKE_CALLBACK_DUE))
                conn.execute(q.notify_watchers(job_id))
            return delivery_from_row(row)

        replayed = await self.db.run(tx)
        if replayed is not None:
            self._changed(job_id)
        return replayed

    async def delivery_of_job(self, job_id: int) -> Delivery | None:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_delivery_of_job(job_id))).first()
        return delivery_from_row(row) if row else None

    async def deliveries_by_status(self, client_id: int | None = None) -> dict[str, int]:
        """Callback deliveries not delivered, by status (read through partial indexes)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(q.count_deliveries_by_status(client_id))).all()
        counts = {s: 0 for s in ("pending", "failing", "dead")}
        counts.update({str(status): int(n) for status, n in rows})
        return counts
