"""The screen on a site-sized state (2,000 queues, 50 farms): it renders and keeps updating; times reported."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import RENDER_TIMES, PageOpener
from tests.dashboard.site import lease, register
from tests.waiting import wait_until
from xtreaming.broker import Record, open_broker

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUEUES = 2000
FARMS = 50
BASES = 40


def fill_log(root: Path) -> None:
    """2,000 topics with a few messages each, written before the coordinator starts (it discovers them)."""
    log = open_broker(f"sqlite:///{root}/log.db")
    try:
        for index in range(QUEUES):
            kind = "COBSINC" if index % 5 == 0 else "IMPORTACAO"
            topic = f"MULTCOB{index % BASES:02d}.{1000 + index}.{kind}.CARGA"
            log.create_topic(topic, 1)
            log.append(topic, [Record(f"{index:05d}{m:06d}".encode(), b"<cliente/>") for m in range(5)])
    finally:
        log.close()


@pytest.mark.timeout(240)
def test_the_screen_renders_and_updates_two_thousand_queues(
    open_page: PageOpener, tmp_path: Path, artifacts: Path
) -> None:
    fill_log(tmp_path)
    running = RunningCoordinator(tmp_path, heartbeat_interval_s=300).start()
    try:
        with httpx.Client(base_url=running.url, timeout=60) as api:
            wait_until(
                lambda: len(api.get("/api/status").json()["queues"]) == QUEUES,
                120,
                f"the coordinator to discover the {QUEUES} topics",
            )
            for index in range(FARMS):
                lease(api, register(api, f"farm-{index:02d}", slots=8), [0, 1])

        page = open_page(running.url + "/", height=1200)
        expect(page.locator("#queue-count")).to_have_text(
            f"{QUEUES:,} de {QUEUES:,} filas".replace(",", "."), timeout=60_000
        )
        expect(page.locator("tr[data-farm]")).to_have_count(FARMS)
        renders = int(page.locator("body").get_attribute("data-renders") or "0")
        page.wait_for_function("n => Number(document.body.dataset.renders) >= n", arg=renders + 3, timeout=30_000)

        first = page.evaluate("performance.getEntriesByName('xtreaming:first-render')[0].startTime")
        durations = page.evaluate("performance.getEntriesByName('xtreaming:render').map(e => e.duration)")
        page.screenshot(path=artifacts / "operator-screen-2000-queues.png")
    finally:
        running.stop()

    updates = sorted(durations[1:])
    RENDER_TIMES.append(
        f"{QUEUES:,} queues, {FARMS} farms: first render done {first:.0f} ms after navigation start, "
        f"building it took {durations[0]:.0f} ms; "
        f"{len(updates)} live updates took {updates[len(updates) // 2]:.0f} ms median, {updates[-1]:.0f} ms max"
    )
