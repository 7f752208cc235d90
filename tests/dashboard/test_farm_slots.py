"""A farm's detail on the screen: each slot with its task, queue, progress, memory and running time, the slot kept
for urgent work marked; in pt-BR and English."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.busy_site import FARM, SLOT_DONE, SLOT_TOTAL, arrange_busy_site
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU

pytestmark = pytest.mark.browser

WORDS = {
    "pt-BR": {"running": "rodando", "idle": "livre", "urgent": "urgente", "memory": "48 MB", "progress": "40%"},
    "en-US": {"running": "running", "idle": "idle", "urgent": "urgent", "memory": "48 MB", "progress": "40%"},
}


@pytest.mark.parametrize("locale", list(WORDS))
def test_a_farms_detail_shows_what_runs_in_each_slot(
    api: httpx.Client, server: RunningCoordinator, open_page: PageOpener, locale: str
) -> None:
    site = arrange_busy_site(api)
    words = WORDS[locale]
    page = open_page(server.url + "/", locale=locale, width=1280, height=800)

    page.locator(f'tr[data-farm="{FARM}"]').click()
    slots = page.locator("#farm-rows tr.detail tr[data-slot]")
    expect(slots).to_have_count(4)
    busy = page.locator('#farm-rows tr.detail tr[data-slot="0"]')
    expect(busy.locator('[data-col="slot-state"]')).to_have_text(words["running"])
    expect(busy.locator('[data-col="slot-topic"]')).to_have_text(BUREAU)
    expect(busy.locator('[data-col="slot-task"]')).to_have_attribute("title", site.running["task_id"])
    expect(busy.locator(".percent")).to_have_text(words["progress"])
    filled = busy.locator(".bar > span").evaluate("e => e.offsetWidth / e.parentElement.clientWidth")
    assert filled == pytest.approx(SLOT_DONE / SLOT_TOTAL, abs=0.02)  # the bar drawn, not only the figure
    expect(busy.locator('[data-col="memory"]')).to_have_text(words["memory"])
    expect(busy.locator('[data-col="running"]')).to_have_text(re.compile(r"^\d+ s$"))
    idle = page.locator('#farm-rows tr.detail tr[data-slot="1"]')
    expect(idle.locator('[data-col="slot-state"]')).to_have_text(words["idle"])
    urgent = page.locator('#farm-rows tr.detail tr[data-slot="3"]')
    expect(urgent).to_have_class(re.compile(r"\burgent-slot\b"))
    expect(urgent.locator(".urgent")).to_have_text(words["urgent"])
    expect(page.locator('#farm-rows tr.detail tr[data-slot="0"] .urgent')).to_have_count(0)

    page.locator(f'tr[data-farm="{FARM}"]').click()  # closes it
    expect(slots).to_have_count(0)
