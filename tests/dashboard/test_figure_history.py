"""The screen's sparklines and charts come from the coordinator's own figure history: after a restart, a page
opened afresh draws the work done before it at once (nothing kept in the browser)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, complete, lease, publish, register

pytestmark = pytest.mark.browser


#: The y of the chart's zero line (chart.js's TOP.y1): an area with work done rises above it.
BASELINE = 92


@pytest.mark.parametrize(("width", "height", "locale"), [(1280, 800, "pt-BR"), (1920, 1080, "en-US")])
def test_charts_have_points_on_first_load_after_a_restart(
    open_page: PageOpener, tmp_path: Path, artifacts: Path, width: int, height: int, locale: str
) -> None:
    running = RunningCoordinator(tmp_path).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as api:
            publish(api, BUREAU, 20)
            [task] = lease(api, register(api), [0])
            complete(api, task)
        running.stop()
        running.start()

        page = open_page(running.url + "/", locale=locale, width=width, height=height)
        base_chart = page.locator('article[data-base="MULTCOB03"] [data-field="base-chart"] svg.chart')
        expect(base_chart).to_be_visible()
        assert int(base_chart.get_attribute("data-active") or 0) >= 1
        assert int(base_chart.get_attribute("data-points") or 0) >= 1
        done_area = base_chart.locator("path.done").get_attribute("d") or ""
        assert min(float(y) for y in re.findall(r",([\d.]+)", done_area)) < BASELINE  # the area rises somewhere

        page.wait_for_function(
            """topic => {
                const line = document.querySelector(`tr[data-topic="${topic}"] svg.spark polyline`);
                const pairs = (line.getAttribute("points") || "").split(" ").filter(Boolean);
                const ys = pairs.map(p => Number(p.split(",")[1]));
                return ys.length > 2 && Math.min(...ys) < 15;
            }""",
            arg=BUREAU,
        )  # the sparkline rises from the server's minutes, not from what this page has seen

        page.locator(f'tr[data-topic="{BUREAU}"]').click()
        queue_chart = page.locator('#queue-rows tr.detail [data-field="queue-chart"] svg.chart')
        expect(queue_chart).to_be_visible()
        assert int(queue_chart.get_attribute("data-active") or 0) >= 1
        page.screenshot(path=artifacts / f"charts-after-restart-{locale}-{width}.png", full_page=True)
    finally:
        running.stop()
