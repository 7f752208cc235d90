"""A failed attempt's error reads in the screen's language: the coordinator keeps it as ``attempt 1: <detail>``, and the
screen shows the worker's detail with the attempt apart (the history's "Tentativa" column), never the English prefix,
in the queue's detail and in a key's history, in pt-BR (default) and in English."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, lease, publish, register
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

#: The first message's key: its one attempt failed and waits for another.
RETRIED = "00000000000"
DETAIL = "timeout ao consultar o bureau (30 s)"
LAST_ERROR = {"pt-BR": f"Último erro (tentativa 1): {DETAIL}", "en-US": f"Last error (attempt 1): {DETAIL}"}


@pytest.fixture
def retried(api: httpx.Client) -> None:
    """BUREAU's two messages run once: the first fails for another attempt with ``DETAIL``, the second is ok."""
    publish(api, BUREAU, 2)
    [task] = lease(api, register(api), [0])
    body = {"default": "ok", "results": [{"id": f"{BUREAU}/0/0", "status": "retry", "detail": DETAIL}]}
    answer = api.post(f"/api/tasks/{task['task_id']}/complete", json=body)
    assert answer.status_code == 200, answer.text
    wait_until(
        lambda: api.get("/api/messages", params={"key": RETRIED}).json()["attempts"], 10, "the attempt in the history"
    )


def look_up(page: Page, key: str) -> None:
    page.locator("#history-key").fill(key)
    page.locator("#history-form button[type=submit]").click()


def test_the_api_gives_the_attempt_apart_from_the_detail(retried: None, api: httpx.Client) -> None:
    [queue] = api.get("/api/queues").json()["items"]
    [attempt] = api.get("/api/messages", params={"key": RETRIED}).json()["attempts"]

    assert (queue["last_error"], queue["last_error_attempt"]) == (DETAIL, 1)
    assert (attempt["attempt"], attempt["result"], attempt["detail"]) == (1, "retry", DETAIL)


@pytest.mark.parametrize("locale", list(LAST_ERROR))
def test_a_failed_attempt_reads_in_the_screens_language(
    retried: None, server: RunningCoordinator, open_page: PageOpener, locale: str, artifacts: Path
) -> None:
    page = open_page(server.url + "/", locale=locale)

    page.locator(f'tr[data-topic="{BUREAU}"]').click()
    last_error = page.locator('[data-field="last-error"]')
    expect(last_error).to_have_text(LAST_ERROR[locale])
    look_up(page, RETRIED)
    row = page.locator("#history-rows tr")
    expect(row.locator("td.detail")).to_have_text(DETAIL)
    expect(row.locator("td.num").first).to_have_text("1")  # the attempt, in its own column
    page.screenshot(path=artifacts / f"attempt-words-{locale}.png", full_page=True)

    page.locator("#lang-toggle").click()  # the other language: its own words around the same detail
    other = LAST_ERROR["en-US" if locale == "pt-BR" else "pt-BR"]
    expect(last_error).to_have_text(other)
    expect(row.locator("td.detail")).to_have_text(DETAIL)
    assert "attempt 1:" not in (last_error.inner_text() + row.inner_text())  # the stored words, never shown
