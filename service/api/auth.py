"""Bearer keys and scopes (docs/contract.md): who is calling, and what they may see."""

from __future__ import annotations

from starlette.requests import Request

from service.api.context import ctx_of
from service.api.problems import Problem
from service.store.records import Principal

JOBS_WRITE = "jobs:write"
JOBS_READ = "jobs:read"
OPS_READ = "ops:read"
ADMIN = "admin"
SCOPES = frozenset({JOBS_WRITE, JOBS_READ, OPS_READ, ADMIN})


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="outpaint-jobs"'}
    )


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("Send `Authorization: Bearer KEY`.")
    ctx = ctx_of(request)
    principal = await ctx.store.clients.authenticate(key.strip(), ctx.runtime.clock())
    if principal is None:
        raise _unauthorized("The key is unknown or revoked.")
    return principal


async def require(request: Request, *any_of: str) -> Principal:
    """The caller, if its key holds one of `any_of` (admin holds them all); else 401/403."""
    principal = await authenticate(request)
    if ADMIN in principal.scopes or principal.scopes.intersection(any_of):
        return principal
    raise Problem(403, "Forbidden", f"This key lacks the scope: {' or '.join(any_of)}.")


def visible_client(principal: Principal) -> int | None:
    """Whose jobs the caller may read: every client's for ops:read and admin."""
    if ADMIN in principal.scopes or OPS_READ in principal.scopes:
        return None
    return principal.client_id


def can_read(principal: Principal) -> bool:
    """May the caller read jobs at all (its own, or every client's)?"""
    return bool(principal.scopes & {ADMIN, JOBS_READ, OPS_READ})


def writable_client(principal: Principal) -> int | None:
    """Whose jobs the caller may change: its own, or any for admin."""
    return None if ADMIN in principal.scopes else principal.client_id
