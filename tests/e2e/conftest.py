"""The farm tests' fixtures: a site per test (its own coordinator, log and state) and its farms."""

from tests.farm.conftest import make_site, site

__all__ = ["make_site", "site"]
