"""When a base finishes, on its card, in the site's time zone (not the browser's) and the screen's language."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, complete, lease, publish, register
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

#: A zone far from the test machine's UTC, so a time shown in the browser's zone would differ.
SITE_ZONE = "Asia/Tokyo"
WORDS = {
    "pt-BR": "MULTCOB03 termina às {time} (20 mensagens pendentes)",
    "en-US": "MULTCOB03 finishes at {time} (20 messages pending)",
}


@pytest.mark.parametrize("locale", list(WORDS))
def test_a_base_card_says_when_the_base_finishes(
    open_page: PageOpener, tmp_path: Path, artifacts: Path, locale: str
) -> None:
    running = RunningCoordinator(tmp_path, time_zone=SITE_ZONE).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as api:
            publish(api, BUREAU, 20)
            [task] = lease(api, register(api), [0])
            complete(api, task)  # the base's speed per worker is known
            publish(api, BUREAU, 20, first=20)
            wait_until(lambda: base_row(api)["eta_at"], 10, "the base to have an ETA")
            page = open_page(running.url + "/", locale=locale, width=1280, height=800)
            card = page.locator('article[data-base="MULTCOB03"]')
            pattern = re.escape(WORDS[locale]).replace(re.escape("{time}"), r"(\d\d:\d\d)")
            expect(card.locator('[data-field="eta"]')).to_have_text(re.compile(f"^{pattern}$"))
            before = site_time(base_row(api)["eta_at"])
            match = re.match(pattern, card.locator('[data-field="eta"]').inner_text())
            after = site_time(base_row(api)["eta_at"])
            assert match is not None
            assert match[1] in {before, after}  # the estimate moves with time: either side of the reading
            card.screenshot(path=artifacts / f"base-eta-{locale}.png")
    finally:
        running.stop()


def base_row(api: httpx.Client) -> dict[str, Any]:
    rows = api.get("/api/status").json()["bases"]
    row: dict[str, Any] = next(b for b in rows if b["name"] == "MULTCOB03")
    return row


def site_time(at: str) -> str:
    """``at`` (ISO) as HH:MM in the site's zone."""
    return datetime.fromisoformat(at).astimezone(ZoneInfo(SITE_ZONE)).strftime("%H:%M")
