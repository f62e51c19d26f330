"""`GET /dashboard`: the self-contained ops page (no build step, no external script: its
style, scripts and the vendored uPlot are inlined). The page itself is public; everything
it shows comes from the API with the key the user gives it."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

HERE = Path(__file__).parent
ASSETS = HERE / "ops_page"  # page.html, style.css, and one script per view
SCRIPTS = ("common.js", "overview.js", "job.js", "main.js")  # in this order
UPLOT = HERE / "vendor" / "uplot"  # uPlot, vendored from npm (VERSION; scripts/vendor-uplot.sh)


def _page() -> tuple[str, list[str]]:
    """The page, and its inline scripts (for their hashes in the CSP)."""
    scripts = [
        (UPLOT / "uPlot.iife.min.js").read_text(),
        "\n" + "\n".join((ASSETS / name).read_text() for name in SCRIPTS),
    ]
    page = (
        (ASSETS / "page.html")
        .read_text()
        .replace("<!-- style -->", f"<style>\n{(ASSETS / 'style.css').read_text()}</style>")
        .replace(
            "<!-- uplot -->",
            f"<style>{(UPLOT / 'uPlot.min.css').read_text()}</style>\n<script>{scripts[0]}</script>",
        )
        .replace("<!-- scripts -->", f"<script>{scripts[1]}</script>")
    )
    return page, scripts


def script_hash(script: str) -> str:
    """A CSP source allowing exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


PAGE, _SCRIPTS = _page()
HEADERS = {
    "Content-Security-Policy": (
        # the page is built once: its two inline scripts are allowed by their hashes alone
        f"default-src 'none'; script-src {' '.join(script_hash(s) for s in _SCRIPTS)}; "
        "style-src 'unsafe-inline'; "
        # thumbnails of archived outputs: fetched with the key, shown from blob: URLs
        "connect-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"  # never inside another site's frame
    ),
    "X-Frame-Options": "DENY",  # the same, for browsers that predate frame-ancestors
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def dashboard(_request: Request) -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


routes = [Route("/dashboard", dashboard, methods=["GET"])]
