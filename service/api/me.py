"""`GET /v1/me`: the calling key as the service sees it (its client, display prefix and
scopes), so a page offers only what the key may do."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import authenticate


async def me(request: Request) -> Response:
    principal = await authenticate(request)
    return JSONResponse(
        {
            "client": principal.client_name,
            "key_prefix": principal.key_prefix,
            "scopes": sorted(principal.scopes),
        }
    )


routes = [Route("/v1/me", me, methods=["GET"])]
