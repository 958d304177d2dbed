"""The interactive API docs (``/docs``), served whole from the installed packages: they work offline.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so on a server without internet access (or behind a
strict proxy) it is blank, and when it does load, a third party serves script that runs with the page's origin.
Here the page, its script and its stylesheet all come from this server: Swagger UI's files from the
``fastapi-offline`` package, and a small start-up script of ours instead of an inline one, so the page keeps the
same Content-Security-Policy as every other response (``core/http.py: SECURITY_HEADERS``).
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

#: Swagger UI's script, stylesheet and icon, as the ``fastapi-offline`` package ships them.
ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS = "/docs"

#: Starts Swagger UI on the page; the OpenAPI address comes from the script tag. No validator badge: it would
#: send the API description to a public validation service.
_START = """\
"use strict";
window.ui = SwaggerUIBundle({
  url: document.currentScript.dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
"""

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="stylesheet" href="{root}{docs}/assets/swagger-ui.css">
<link rel="icon" href="{root}{docs}/assets/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}{docs}/assets/swagger-ui-bundle.js"></script>
<script src="{root}{docs}/start.js" data-openapi="{root}{openapi}"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from the package (build the app with ``docs_url=None``, so FastAPI's CDN page is off)."""
    assert app.docs_url is None, "build the app with docs_url=None: install_docs serves /docs"
    openapi = app.openapi_url or "/openapi.json"
    app.mount(f"{DOCS}/assets", StaticFiles(directory=ASSETS), name="docs-assets")

    # Plain routes, as FastAPI's own /docs and /openapi.json are: public pages about the API, not API operations.
    async def docs_page(request: Request) -> Response:
        root = html.escape(str(request.scope.get("root_path", "")))
        return HTMLResponse(_PAGE.format(title=html.escape(app.title), root=root, docs=DOCS,
                                         openapi=html.escape(openapi)))

    async def docs_start(_request: Request) -> Response:
        return Response(_START, media_type="text/javascript")

    app.add_route(DOCS, docs_page, methods=["GET"], include_in_schema=False)
    app.add_route(f"{DOCS}/start.js", docs_start, methods=["GET"], include_in_schema=False)
