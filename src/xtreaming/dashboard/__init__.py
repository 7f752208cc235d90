"""The operator screen's static assets (HTML, CSS, plain JS modules, pt-BR and en messages)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The folder holding the assets, as installed with the package.
ASSETS = Path(str(files("xtreaming.dashboard")))
