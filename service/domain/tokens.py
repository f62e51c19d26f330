"""Per-job webhook tokens: `{track_id}.{HMAC(secret, track_id)}`.

The token both names the job and proves the caller got the URL from us; the secret is
WEBHOOK_SECRET (or one generated once and kept in the database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# ASCII digits only (str.isdigit() takes "²", which int() refuses), at most 18 of them (a
# bigint), a dot, and the unpadded base64url of a SHA-256 MAC.
_TOKEN = re.compile(r"([0-9]{1,18})\.([A-Za-z0-9_-]{43})")


def _mac(secret: str, track_id: int) -> str:
    digest = hmac.new(secret.encode(), f"outpaint-job:{track_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def make_token(secret: str, track_id: int) -> str:
    return f"{track_id}.{_mac(secret, track_id)}"


def read_token(secret: str, token: str) -> int | None:
    """The track_id the token names, or None when it is not one of ours."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    track_id, mac = int(match.group(1)), match.group(2)
    if not hmac.compare_digest(mac.encode(), _mac(secret, track_id).encode()):
        return None
    return track_id
