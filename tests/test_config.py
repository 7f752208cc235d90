"""Settings refuse values the product cannot keep its promises with, in a sentence naming them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from xtreaming.config import Settings


@pytest.mark.parametrize("interval_s", [0.05, 0.1, 0.19])
def test_a_heartbeat_interval_shorter_than_a_farm_takes_to_die_is_refused(interval_s: float) -> None:
    with pytest.raises(ValidationError, match="heartbeat_interval_s"):
        Settings(heartbeat_interval_s=interval_s)


def test_the_shortest_heartbeat_interval_is_accepted() -> None:
    assert Settings(heartbeat_interval_s=0.2).heartbeat_interval_s == 0.2


def test_a_leader_lease_farms_would_not_outlast_is_refused_on_a_shared_store() -> None:
    shared = "postgresql+psycopg://db/site"

    with pytest.raises(ValueError, match=r"leader_lease_s 5 is too long for heartbeat_interval_s 5: .* at most 4 "):
        Settings(database_url=shared, leader_lease_s=5)

    assert Settings(database_url=shared, leader_lease_s=4).leader_lease_s == 4
    assert Settings(leader_lease_s=5).leader_lease_s == 5  # SQLite: one coordinator, no takeover
