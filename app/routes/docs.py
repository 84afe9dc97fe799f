"""/docs (Swagger UI) and /redoc, with every asset served by the service itself.

FastAPI's own pages load their scripts, styles, favicon and fonts from CDNs, so on a clinic
network without internet they stay blank. The assets here come from the `fastapi-offline`
wheel's static folder; only the files are used, the pages are FastAPI's.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/static/docs"
# The browser itself keeps the pages on the service: ReDoc's bundle loads a logo from
# cdn.redoc.ly that no option turns off (blocked, ReDoc shows the link's text alone). Both
# pages have inline scripts or styles of their own, and ReDoc searches in a blob: worker.
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (open, like /openapi.json)."""
    # `packages` finds the folder without importing fastapi_offline, whose FastAPI factory
    # this service does not use.
    assets = StaticFiles(packages=[("fastapi_offline", "static")])
    app.mount(ASSETS_URL, assets, name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # The API authenticates with a key header, not OAuth2: no redirect page needed.
            oauth2_redirect_url=None,
            # Swagger UI otherwise shows a badge image from validator.swagger.io whenever the
            # page's host is not localhost (every real deployment); the policy would leave a
            # broken image.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page


def _root_path(request: Request) -> str:
    # Behind a proxy that strips a prefix, the browser needs the prefix back (as FastAPI does).
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
