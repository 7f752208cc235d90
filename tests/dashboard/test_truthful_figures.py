"""Figures that tell the truth, in pt-BR and English: a queue whose attempts only fail says "falhando" in red with
its last error, a finished queue shows speed 0 and the time it finished, the speed now sits beside the 1-minute
and 1-hour figures, a queue without a worker says so."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.busy_site import FAILING, FAILURE, ORPHAN, arrange_busy_site
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, SYNC, queue

pytestmark = pytest.mark.browser

#: The speed over the last ~10 s reaches 0 once that long has passed with nothing finished.
SPEED_SETTLES_MS = 25_000
WORDS = {
    "pt-BR": {"failing": "falhando", "done": r"concluída às \d\d:\d\d", "no-worker": "sem worker configurado"},
    "en-US": {"failing": "failing", "done": r"done at \d\d:\d\d", "no-worker": "no worker configured"},
}


def cell(page: Page, topic: str, column: str) -> Locator:
    return page.locator(f'tr[data-topic="{topic}"] td[data-col="{column}"]')


@pytest.mark.parametrize("locale", list(WORDS))
def test_failing_done_and_workerless_queues_say_what_they_are(
    api: httpx.Client, server: RunningCoordinator, open_page: PageOpener, locale: str
) -> None:
    arrange_busy_site(api)
    words = WORDS[locale]
    page = open_page(server.url + "/", locale=locale, width=1280, height=800)

    failing = cell(page, FAILING, "state")
    expect(failing.locator(".state")).to_have_text(words["failing"])
    expect(failing.locator(".state")).to_have_class(re.compile(r"\bstate-failing\b"))
    expect(failing.locator(".state-error")).to_contain_text(FAILURE)
    assert failing.locator(".state").evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"  # --bad
    expect(cell(page, FAILING, "eta")).to_have_text("—")
    assert queue(api, FAILING)["state"] == "failing"

    page.locator(f'tr[data-topic="{FAILING}"]').click()
    expect(page.locator('#queue-rows tr.detail [data-field="last-error"]')).to_contain_text(FAILURE)

    expect(cell(page, ORPHAN, "state")).to_have_text(words["no-worker"])
    expect(cell(page, BUREAU, "state")).to_have_text("rodando" if locale == "pt-BR" else "running")

    done = cell(page, SYNC, "state")
    expect(done).to_have_text(re.compile(f"^{words['done']}$"))
    expect(cell(page, SYNC, "speed").locator(".speed-now")).to_have_text("0", timeout=SPEED_SETTLES_MS)
    expect(cell(page, SYNC, "eta")).to_have_text("—")
    row = queue(api, SYNC)
    assert (row["state"], row["speed_10s"], row["eta_s"]) == ("done", 0, None)
    assert row["finished_at"] is not None
    expect(cell(page, SYNC, "speed").locator(".speed-more")).to_have_text(re.compile(r"^1 min [\d.,]+ · 1 h [\d.,]+$"))
