"""A site per test: its own coordinator, log and state under ``tmp_path``, and the farms it starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.farm.site import Site
from xtreaming.config import Token


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """``make_site(tokens=None, **settings)``: a site whose coordinator takes these tokens and runs with these
    settings (e.g. a short heartbeat)."""
    sites: list[Site] = []

    def make(tokens: list[Token] | None = None, **settings: object) -> Site:
        sites.append(Site(tmp_path, tokens, **settings))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()
