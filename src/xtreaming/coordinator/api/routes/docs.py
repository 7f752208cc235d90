"""``/docs``: Swagger UI served by the coordinator itself, so the API's page works with no internet access.

The assets come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which renders FastAPI's
OpenAPI 3.1) rather than from a CDN, which a site's coordinator often cannot reach.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

router = APIRouter(include_in_schema=False)

#: Where the assets are served: beside ``/docs``, apart from the screen's ``/static``.
ASSETS_PATH: Final = "/docs-assets"
#: Only what the page loads: the package also holds source maps and other bundles.
SERVED: Final = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})


class SwaggerAssets(StaticFiles):
    """The Swagger UI files the page loads, and nothing else of the package."""

    def __init__(self) -> None:
        super().__init__(directory=Path(str(swagger_ui_path)))

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in SERVED:
            return "", None
        return super().lookup_path(path)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
    )


@router.get("/docs/oauth2-redirect")
def oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()
