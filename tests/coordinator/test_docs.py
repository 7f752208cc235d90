"""``/docs`` works with no internet access: the page and every asset it loads come from the coordinator."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from tests.coordinator.server import RunningCoordinator

#: What a page loads: ``src=``, ``href=`` and the Swagger UI's ``url:`` of the OpenAPI document.
LOADED = re.compile(r"""(?:\b(?:src|href)=|\burl:\s*)["']([^"']+)["']""")


def test_docs_and_every_asset_it_loads_are_served_by_the_coordinator_itself(tmp_path: Path) -> None:
    server = RunningCoordinator(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            page = api.get("/docs")
            urls = [urljoin(f"{server.url}/docs", u) for u in LOADED.findall(page.text)]
            fetched = {url: api.get(url) for url in urls}
            outside = [url for url in urls if urlsplit(url).netloc != urlsplit(server.url).netloc]
            redoc = api.get("/redoc")
    finally:
        server.stop()

    assert page.status_code == 200, page.text
    assert outside == []
    assert {urlsplit(u).path for u in urls} >= {
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/openapi.json",
    }
    assert {url: r.status_code for url, r in fetched.items()} == dict.fromkeys(urls, 200)
    bundle = fetched[f"{server.url}/docs-assets/swagger-ui-bundle.js"]
    assert "SwaggerUIBundle" in bundle.text  # the real thing, which renders OpenAPI 3.1 (Swagger UI 5)
    assert fetched[f"{server.url}/openapi.json"].json()["openapi"].startswith("3.1")
    assert redoc.status_code == 404  # ReDoc would load its script from a CDN: not offered


def test_the_docs_assets_route_serves_only_what_the_page_loads(tmp_path: Path) -> None:
    server = RunningCoordinator(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            statuses = {
                path: api.get(f"/docs-assets/{path}").status_code
                for path in ("swagger-ui.css", "swagger-ui-bundle.js.map", "index.j2", "../__init__.py")
            }
    finally:
        server.stop()

    assert statuses == {"swagger-ui.css": 200, "swagger-ui-bundle.js.map": 404, "index.j2": 404, "../__init__.py": 404}
