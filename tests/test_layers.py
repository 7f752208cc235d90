"""The import contracts (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``) name every module.

A layers contract says nothing of a module it does not list: a new module left out could import
upward unchecked. These tests fail until it is placed in a layer.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def layers_contract(container: str) -> dict[str, Any]:
    contracts: list[dict[str, Any]] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["type"] == "layers" and c.get("containers") == [container])


def children(package: str) -> set[str]:
    module = __import__(package, fromlist=["__path__"])
    return {info.name for info in pkgutil.iter_modules(module.__path__)} - {"__main__", "migrations"}


@pytest.mark.parametrize("container", ["xtreaming", "xtreaming.coordinator"])
def test_every_module_of_a_layered_package_is_in_a_layer(container: str) -> None:
    contract = layers_contract(container)
    named = {name for layer in contract["layers"] for name in re.split(r"[|:]", layer)}

    assert children(container) - {n.strip() for n in named} == set()
