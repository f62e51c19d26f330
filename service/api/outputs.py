"""A job's archived outputs, served from the output store that holds each (an earlier
OUTPUT_STORE's too): the bytes (with their checksum as ETag, cacheable for good: an archived
object never changes), or a redirect to a short-lived signed URL when the store is S3 and
OUTPUT_PRESIGN_SECONDS asks for it (with the same ETag)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from service.api.auth import JOBS_READ, OPS_READ
from service.api.context import ctx_of
from service.api.lookup import visible_job
from service.api.params import ascii_int
from service.api.problems import Problem, not_found

IMMUTABLE = "private, max-age=31536000, immutable"
MAX_OUTPUT_INDEX = 2**31 - 1  # job_outputs.n is a 32-bit integer: beyond it, no such output


async def get_output(request: Request) -> Response:
    _principal, job = await visible_job(request, JOBS_READ, OPS_READ)
    ctx = ctx_of(request)
    n = ascii_int(request.path_params["n"])
    current = ctx.runtime.objects
    fits = n is not None and n <= MAX_OUTPUT_INDEX  # what job_outputs.n holds
    stored = await ctx.store.archives.output(job.id, n) if fits and n is not None else None
    if current is None or stored is None or stored.object_key is None or stored.sha256 is None:
        raise not_found()
    objects = current.holding(stored.store)
    etag = f'"{stored.sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    presign = ctx.settings.output_presign_seconds
    if presign > 0:
        url = await objects.sign(stored.object_key, presign)
        if url is not None:
            return RedirectResponse(
                url, status_code=307, headers={"ETag": etag, "Cache-Control": "no-store"}
            )
    try:
        size, chunks = await objects.stream(stored.object_key)
    except FileNotFoundError:
        raise missing_output(objects is not current) from None
    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=stored.content_type, headers=headers)


def missing_output(elsewhere: bool) -> Problem:
    """404, saying so when the object is recorded in an earlier store that lost it."""
    detail = (
        "This output is kept in an earlier output store, which does not have it now."
        if elsewhere
        else "This output's object is missing from the output store."
    )
    return Problem(404, "Not found", detail, type_="not-found")


routes = [Route("/v1/jobs/{job_id}/outputs/{n}", get_output, methods=["GET"])]
