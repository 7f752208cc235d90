"""The screen says which coordinator leads and since when, where several share the store; alone on SQLite, nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.services import fresh_postgres_schema

pytestmark = pytest.mark.browser


@pytest.mark.postgres
def test_the_screen_names_the_leader_and_since_when(tmp_path: Path, open_page: PageOpener) -> None:
    with fresh_postgres_schema() as database_url:
        leader = RunningCoordinator(tmp_path, database_url=database_url).start()
        try:
            page = open_page(leader.url + "/", locale="en-US", width=1280, height=800)

            since = r"\d+/\d+/\d+, \d+:\d\d:\d\d"  # en-US short date, then the time
            expect(page.locator("#leader")).to_have_text(re.compile(rf"^leader: {re.escape(leader.url)} since {since}"))
        finally:
            leader.stop()


def test_a_coordinator_alone_on_its_own_store_shows_no_leader(
    server: RunningCoordinator, open_page: PageOpener
) -> None:
    page = open_page(server.url + "/", width=1280, height=800)

    expect(page.locator("#updated")).not_to_be_empty()
    expect(page.locator("#leader")).to_be_empty()
