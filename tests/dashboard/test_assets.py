"""The page preloads every script module it is made of, so the browser fetches them at once rather than import
by import (the first render comes that much sooner)."""

from __future__ import annotations

import re

from xtreaming.dashboard import ASSETS


def test_every_module_is_preloaded_by_the_page() -> None:
    page = (ASSETS / "index.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="static/([\w.]+\.js)">', page))
    modules = {path.name for path in ASSETS.glob("*.js")} - {"app.js"}  # the entry point, loaded by its script tag
    assert preloaded == modules
