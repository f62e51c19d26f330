"""`GET /dashboard`: the self-contained ops page (no build step, no external script: the
vendored uPlot is inlined). The page itself is public; everything it shows comes from the
API with an ops key."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

HERE = Path(__file__).parent
UPLOT = HERE / "vendor" / "uplot"  # uPlot, vendored from npm (VERSION; scripts/vendor-uplot.sh)
PAGE = (
    (HERE / "dashboard.html")
    .read_text()
    .replace(
        "<!-- uplot -->",
        f"<style>{(UPLOT / 'uPlot.min.css').read_text()}</style>\n"
        f"<script>{(UPLOT / 'uPlot.iife.min.js').read_text()}</script>",
    )
)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def dashboard(_request: Request) -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


routes = [Route("/dashboard", dashboard, methods=["GET"])]
