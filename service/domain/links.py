"""Event links: a token that lets a browser read one job's events without a key, until it
expires: `evl_{track_id}.{key_id}.{expires}.{HMAC}`. It names the job, the key that made it
(so revoking the key ends its links) and its expiry in Unix seconds, and is signed with the
service's token secret (apart from webhook tokens by what the MAC covers). Pure code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "evl_"
# ASCII digits only, bounded (a bigint, a bigint, Unix seconds), and a SHA-256 MAC in
# unpadded base64url.
_TOKEN = re.compile(r"evl_([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Grant:
    """What a valid link lets its holder do: read job `job_id`'s events, on behalf of key
    `key_id`, until `expires_at`."""

    job_id: int
    key_id: int
    expires_at: datetime


def _mac(secret: str, job_id: int, key_id: int, expires: int) -> str:
    message = f"outpaint-event-link:{job_id}.{key_id}.{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_link(secret: str, job_id: int, key_id: int, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{PREFIX}{job_id}.{key_id}.{expires}.{_mac(secret, job_id, key_id, expires)}"


def read_link(secret: str, token: str, now: datetime) -> Grant | None:
    """The grant a token carries, or None when it is not one of ours or has expired."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    job_id, key_id, expires = (int(match.group(n)) for n in (1, 2, 3))
    if not hmac.compare_digest(
        match.group(4).encode(), _mac(secret, job_id, key_id, expires).encode()
    ):
        return None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        return None
    return Grant(job_id, key_id, expires_at)
