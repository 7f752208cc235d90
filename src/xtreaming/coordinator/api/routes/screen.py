"""The operator screen "Acompanhamento de MultCobXtreaming": the page at ``/``, its static assets, and ``whoami``.

The page is public (it holds no data); everything it shows comes from ``GET /api/status`` and the
controls call the same REST endpoints as the CLI, with the token the operator gave the page.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath
from typing import Annotated, Final

from fastapi import APIRouter, Header
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from xtreaming.coordinator.api.auth import Viewer
from xtreaming.coordinator.api.schemas import WhoAmI
from xtreaming.dashboard import ASSETS

router = APIRouter(tags=["screen"])

#: The screen's languages; the first is the default (the operators' own).
LANGUAGES: Final = ("pt-BR", "en")
#: The page may load only its own scripts, styles and messages (``data:`` for the icon's fallback).
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
#: What ``/static`` serves: the package's Python files beside the assets are not for browsers.
ASSET_SUFFIXES: Final = frozenset({".css", ".js", ".json", ".svg"})
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")


class Assets(StaticFiles):
    """The screen's CSS, JS modules, message catalogs and icon; 404 for anything else in the folder."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if PurePosixPath(path).suffix not in ASSET_SUFFIXES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def static_files() -> StaticFiles:
    """The assets to mount at ``/static`` beside ``router``."""
    return Assets(directory=ASSETS)


def preferred_language(accept_language: str | None) -> str:
    """The screen language an ``Accept-Language`` header prefers: English only when it ranks above Portuguese."""
    best: tuple[float, int] | None = None
    chosen = LANGUAGES[0]
    for position, part in enumerate((accept_language or "").split(",")[:32]):
        match = _RANGE.match(part)
        if match is None:
            continue
        tag, quality = match[1].lower(), float(match[2]) if match[2] else 1.0
        primary = tag.split("-")[0]
        language = {"pt": "pt-BR", "en": "en"}.get(primary)
        if language is None or quality <= 0:
            continue
        rank = (quality, -position)
        if best is None or rank > best:
            best, chosen = rank, language
    return chosen


@functools.cache
def _page() -> str:
    return (ASSETS / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(accept_language: Annotated[str | None, Header(max_length=1024)] = None) -> HTMLResponse:
    """The screen, in the language ``Accept-Language`` prefers (the page's toggle overrides it)."""
    language = preferred_language(accept_language)
    html = _page().replace('<html lang="pt-BR">', f'<html lang="{language}">', 1)
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Content-Language": language, "Vary": "Accept-Language"})


@router.get("/api/whoami", response_model=WhoAmI)
def whoami(who: Viewer) -> WhoAmI:
    """Who the caller's token is and its role: the screen disables the controls a viewer may not use."""
    return WhoAmI(name=who.name, role=who.role)
