"""The screen's scheduled publishing panel in a real browser: a schedule's last tick, its outcome and its next
tick, in pt-BR and in English; a failing schedule shows its error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import PageOpener

pytestmark = pytest.mark.browser

TOPIC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
FEEDS = "tests.coordinator.schedule_feeds"


def test_the_panel_shows_each_schedules_last_and_next_tick(
    api: httpx.Client, page: Page, open_page: PageOpener, artifacts: Path
) -> None:
    expect(page.locator("#schedules-empty")).to_have_text("Nenhuma publicação agendada.")
    for feed in ("two_clients", "breaks_at_once"):
        body = {"topic": TOPIC, "cron": "* * * * * *", "callable": f"{FEEDS}:{feed}"}
        assert api.post("/api/schedules", json=body).status_code == 201
    good, bad = page.locator('tr[data-schedule="1"]'), page.locator('tr[data-schedule="2"]')
    expect(good.locator('td[data-col="outcome"]')).to_have_text("2 mensagens publicadas")
    expect(good.locator('td[data-col="source"]')).to_have_text(f"função {FEEDS}:two_clients")
    expect(good.locator('td[data-col="next"]')).not_to_have_text("—")
    expect(good.locator('td[data-col="last"]')).not_to_have_text("—")
    expect(bad.locator('td[data-col="outcome"]')).to_have_text(
        "falhou após 0 mensagens: RuntimeError: the feed is down"
    )
    expect(bad).to_have_class("failed")
    expect(bad.locator('td[data-col="outcome"]')).to_have_css("color", "rgb(179, 38, 30)")
    expect(page.locator("#schedules-empty")).to_be_hidden()
    page.locator("#schedule-table").screenshot(path=artifacts / "schedules-panel.png")

    english = open_page(page.url, locale="en-US")
    expect(english.locator('tr[data-schedule="1"] td[data-col="outcome"]')).to_have_text("2 messages published")
    expect(english.locator("#schedules-title")).to_have_text("Scheduled publishing")
