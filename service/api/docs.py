"""`GET /docs`: Swagger UI over /openapi.json, its assets served from the swagger-ui-py
package (no CDN: it works offline)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(swagger_ui.__file__).parent / "static"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Outpaint Jobs API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


async def docs(_request: Request) -> Response:
    return HTMLResponse(PAGE)


routes: list[BaseRoute] = [
    Route("/docs", docs, methods=["GET"]),
    Mount("/docs/assets", app=StaticFiles(directory=ASSETS), name="docs-assets"),
]
