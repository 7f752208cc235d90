"""The screen at a laptop's 1,280 px and at 1,920 px, in pt-BR and English: nothing scrolls sideways, the columns
that matter stay in view, the farms' table stays in its card; a screenshot of each view at each width."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.busy_site import FAILING, FARM, arrange_busy_site
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU

pytestmark = pytest.mark.browser

#: The columns a laptop keeps in view; the others fold into the selected queue's detail row.
KEPT = ("topic", "state", "progress", "speed", "eta", "actions")
FOLDED = ("kind", "base", "consumed", "pending", "failures", "dead")
SIZES = [(1280, 800), (1920, 1080)]
LOCALES = {"pt-BR": "Filas", "en-US": "Queues"}


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page scrolls sideways (0: none)."""
    overflow: int = page.evaluate("() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")
    return overflow


def inner_overflow(page: Page) -> int:
    """How many pixels the queue table scrolls sideways inside its own box (0: none)."""
    overflow: int = page.evaluate(
        "() => { const wrap = document.querySelector('section.queues .table-wrap');"
        " return wrap.scrollWidth - wrap.clientWidth; }"
    )
    return overflow


def right_edge(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return float(box["x"] + box["width"])


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}px" for w, _ in SIZES])
@pytest.mark.parametrize("locale", list(LOCALES))
def test_every_view_fits_without_scrolling_sideways(
    api: httpx.Client,
    server: RunningCoordinator,
    open_page: PageOpener,
    artifacts: Path,
    width: int,
    height: int,
    locale: str,
) -> None:
    arrange_busy_site(api)
    page = open_page(server.url + "/", locale=locale, width=width, height=height)
    expect(page.locator("#queues-title")).to_have_text(LOCALES[locale])
    expect(page.locator("tr[data-topic]")).to_have_count(5)
    name = f"{locale}-{width}"

    assert horizontal_overflow(page) <= 0
    assert inner_overflow(page) <= 0
    row = page.locator(f'tr[data-topic="{BUREAU}"]')
    for column in KEPT:
        cell = row.locator(f'td[data-col="{column}"]')
        expect(cell).to_be_visible()
        assert right_edge(page, f'tr[data-topic="{BUREAU}"] td[data-col="{column}"]') <= width
    for column in FOLDED:
        folded = row.locator(f'td[data-col="{column}"]')
        if width < 1680:
            expect(folded).to_be_hidden()
        else:
            expect(folded).to_be_visible()
    assert right_edge(page, "#farm-table") <= right_edge(page, "section.farms")
    page.screenshot(path=artifacts / f"screen-{name}.png", full_page=True)

    page.locator(f'tr[data-topic="{FAILING}"]').click()
    detail = page.locator("#queue-rows tr.detail")
    expect(detail).to_be_visible()
    expect(detail.locator('[data-field="pending"]')).to_have_text("4")
    assert horizontal_overflow(page) <= 0
    assert inner_overflow(page) <= 0
    detail.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"screen-{name}-queue-detail.png")

    page.locator(f'tr[data-farm="{FARM}"]').click()
    slots = page.locator("#farm-rows tr.detail tr[data-slot]")
    expect(slots).to_have_count(4)
    assert horizontal_overflow(page) <= 0
    assert right_edge(page, "#farm-table") <= right_edge(page, "section.farms")
    page.locator("section.farms").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"screen-{name}-farm-detail.png")

    page.locator("section.bases").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"screen-{name}-bases.png")
    page.locator("section.history").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"screen-{name}-history-and-dlq.png")
