"""Clients and their keys: creation, authentication, revocation, callback secrets and
default URLs; and the service's own generated state (the webhook secret)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from service.domain import callbacks
from service.store import queries as q
from service.store.backend import Backend
from service.store.db import Database
from service.store.health import unavailable
from service.store.records import ClientSecrets, KeyInfo, Principal, hash_key

KEY_PREFIX = "opj_"
WEBHOOK_SECRET_KEY = "webhook_secret"


class ClientStore:
    def __init__(self, db: Database, backend: Backend) -> None:
        self.db = db
        self.backend = backend

    async def webhook_secret(self, configured: str | None) -> str:
        """WEBHOOK_SECRET if set; otherwise one generated once and kept in the database."""
        if configured:
            return configured
        async with self.db.read() as conn:
            found = (await conn.execute(q.get_state(WEBHOOK_SECRET_KEY))).scalar()
        if found is not None:
            return str(found)
        with contextlib.suppress(IntegrityError):  # another process won the race: theirs
            await self.db.run(
                lambda conn: conn.execute(
                    q.insert_state(WEBHOOK_SECRET_KEY, secrets.token_urlsafe(32))
                )
            )
        async with self.db.read() as conn:
            return str((await conn.execute(q.get_state(WEBHOOK_SECRET_KEY))).scalar_one())

    async def create_key(
        self, client_name: str, scopes: Sequence[str], now: datetime
    ) -> tuple[str, str | None]:
        """A new key for the client (created if new). Returns the key, shown only now, and
        for a new client its callback signing secret."""
        raw_key = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 random bits
        fresh_secret = callbacks.new_secret()

        def tx(conn: Connection) -> str | None:
            client = conn.execute(q.get_client_by_name(client_name)).first()
            new_secret = None
            if client is None:
                new_secret = fresh_secret
                client_id = conn.execute(q.insert_client(client_name, new_secret, now)).scalar_one()
                conn.execute(q.seed_client_counts(client_id))
            else:
                client_id = client.id
            conn.execute(
                q.insert_key(client_id, raw_key[:12], hash_key(raw_key), ",".join(scopes), now)
            )
            return new_secret

        return raw_key, await self.db.run(tx)

    async def authenticate(self, raw_key: str, now: datetime) -> Principal | None:
        digest = hash_key(raw_key)
        row = await self.backend.find_active_key(digest)
        if row is None:
            return None
        m = row
        if not secrets.compare_digest(m["key_hash"], digest):
            return None
        stale = now - timedelta(seconds=60)
        last = m["last_used_at"]
        if last is None or last < stale:  # a write at most once a minute
            touch = q.touch_key(m["id"], now, stale)
            try:
                await self.db.run(lambda conn: conn.execute(touch))
            except Exception as exc:  # a read must not fail for want of this write (disk full)
                if unavailable(exc) is None:
                    raise
        return _principal(m)

    async def active_key(self, key_id: int) -> Principal | None:
        """The key with this id, as a caller, unless it was revoked (event links)."""
        async with self.db.read() as conn:
            row = (await conn.execute(q.find_active_key_by_id(key_id))).first()
        return _principal(row._mapping) if row is not None else None

    async def list_keys(self) -> list[KeyInfo]:
        async with self.db.read() as conn:
            rows = (await conn.execute(q.list_keys())).all()
        return [
            KeyInfo(r.prefix, r.client_name, r.scopes, r.created_at, r.revoked_at, r.last_used_at)
            for r in rows
        ]

    async def revoke_key(self, prefix: str, now: datetime) -> bool:
        stmt = q.revoke_key(prefix, now)
        return await self.db.run(lambda conn: bool(conn.execute(stmt).rowcount))

    async def count_keys(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(q.count_keys())).scalar_one())

    async def client_id_of(self, name: str) -> int | None:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_client_by_name(name))).first()
        return int(row.id) if row else None

    async def client_secrets(self, client_id: int) -> ClientSecrets:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_client(client_id))).one()
        return ClientSecrets(
            row.callback_secret, row.previous_callback_secret, row.previous_secret_expires_at
        )

    async def rotate_secret(self, client_name: str, now: datetime, grace: timedelta) -> str | None:
        secret = callbacks.new_secret()
        stmt = q.rotate_client_secret(client_name, secret, now + grace)
        done = await self.db.run(lambda conn: conn.execute(stmt).rowcount)
        return secret if done else None

    async def set_default_callback(self, client_name: str, url: str | None) -> bool:
        stmt = q.set_default_callback(client_name, url)
        return await self.db.run(lambda conn: bool(conn.execute(stmt).rowcount))


def _principal(m: Any) -> Principal:
    """A caller from its key's row (with its client's name and default callback URL)."""
    return Principal(
        key_id=m["id"],
        client_id=m["client_id"],
        client_name=m["client_name"],
        scopes=frozenset(s for s in m["scopes"].split(",") if s),
        default_callback_url=m["default_callback_url"],
        key_prefix=m["prefix"],
    )
