"""`GET /dashboard`: the self-contained ops page (no build step, no external script: its
style, scripts and the vendored uPlot are inlined). The page itself is public; everything
it shows comes from the API with the key the user gives it."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

HERE = Path(__file__).parent
ASSETS = HERE / "ops_page"  # page.html, style.css, and one script per view
SCRIPTS = ("common.js", "overview.js", "job.js", "main.js")  # in this order
UPLOT = HERE / "vendor" / "uplot"  # uPlot, vendored from npm (VERSION; scripts/vendor-uplot.sh)


def _page() -> str:
    scripts = "\n".join((ASSETS / name).read_text() for name in SCRIPTS)
    return (
        (ASSETS / "page.html")
        .read_text()
        .replace("<!-- style -->", f"<style>\n{(ASSETS / 'style.css').read_text()}</style>")
        .replace(
            "<!-- uplot -->",
            f"<style>{(UPLOT / 'uPlot.min.css').read_text()}</style>\n"
            f"<script>{(UPLOT / 'uPlot.iife.min.js').read_text()}</script>",
        )
        .replace("<!-- scripts -->", f"<script>\n{scripts}</script>")
    )


PAGE = _page()
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        # thumbnails of archived outputs: fetched with the key, shown from blob: URLs
        "connect-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def dashboard(_request: Request) -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


routes = [Route("/dashboard", dashboard, methods=["GET"])]
