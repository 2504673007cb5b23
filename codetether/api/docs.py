"""Interactive API docs that load with no network: ``/docs`` (Swagger UI) and ``/redoc``, their
assets served from the ``fastapi-offline`` package under ``/docs/assets``.

The Swagger UI "Authorize" button offers the spec's security schemes: paste an API key for
``bearerAuth``, or sign in through ``/oauth/authorize`` for ``oauth2`` (PKCE, with a client whose
redirect URI is ``<base>/docs/oauth2-redirect``).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# The pages may load nothing from elsewhere (Redoc would fetch its logo from a CDN, for one). The
# inline scripts are FastAPI's page bootstraps; the spec and the "Try it out" calls are same-origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _offline(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def install(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")

    @app.get("/docs", include_in_schema=False, operation_id="swaggerUi")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _offline(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="CodeTether API",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # validatorUrl None: Swagger UI would otherwise send the spec's URL to an outside validator.
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True, "validatorUrl": None},
            init_oauth={"usePkceWithAuthorizationCodeGrant": True, "scopes": "tasks:read tasks:write"},
        ))

    @app.get(OAUTH2_REDIRECT, include_in_schema=False, operation_id="swaggerUiOauth2Redirect")
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False, operation_id="redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _offline(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title="CodeTether API",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False,
        ))
