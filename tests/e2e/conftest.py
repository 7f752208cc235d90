"""The end-to-end tests' fixtures: the farm tests' site per test (its own coordinator, log and state),
and a relay between farms and the coordinator of a ``LeaseSite`` that a test can cut."""

from collections.abc import Iterator

import pytest

from tests.e2e.lease_site import LeaseSite
from tests.e2e.relay import Relay
from tests.farm.conftest import make_site, site

__all__ = ["make_site", "relay", "site"]


@pytest.fixture
def relay(site: LeaseSite) -> Iterator[Relay]:
    """A relay to the coordinator of the module's ``LeaseSite`` (farms reach it through ``site.farm_via``)."""
    relay = Relay(int(site.url.rsplit(":", 1)[1]))
    yield relay
    relay.close()
