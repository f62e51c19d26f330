"""`GET /metrics`: Prometheus text format."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import metrics


async def metrics_endpoint(_request: Request) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
