"""One language per view for what the API answers as codes: an attempt's result in the history lookup and the
coordinator's explanation of a queue are shown in the screen's language (pt-BR by default, English), and shown again
in the other when the operator switches."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, lease, publish, register
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

#: The first message's key: its one attempt failed and waits for another (result ``retry``).
RETRIED = "00000000000"
DETAIL = "timeout ao consultar o bureau (30 s)"
WORDS = {
    "pt-BR": {"retry": "nova tentativa", "paused": "A fila está pausada.", "other": "retried"},
    "en-US": {"retry": "retried", "paused": "paused", "other": "nova tentativa"},
}


@pytest.fixture
def retried(api: httpx.Client) -> None:
    """BUREAU's two messages run once: the first fails for another attempt with ``DETAIL``, the second is ok; then
    BUREAU is paused."""
    publish(api, BUREAU, 2)
    [task] = lease(api, register(api), [0])
    body = {"default": "ok", "results": [{"id": f"{BUREAU}/0/0", "status": "retry", "detail": DETAIL}]}
    answer = api.post(f"/api/tasks/{task['task_id']}/complete", json=body)
    assert answer.status_code == 200, answer.text
    assert api.post(f"/api/queues/{BUREAU}/pause").status_code == 200
    wait_until(
        lambda: api.get("/api/messages", params={"key": RETRIED}).json()["attempts"], 10, "the attempt in the history"
    )


def look_up(page: Page, key: str) -> None:
    page.locator("#history-key").fill(key)
    page.locator("#history-form button[type=submit]").click()


@pytest.mark.parametrize("locale", list(WORDS))
def test_results_and_explanations_are_in_the_screens_language(
    retried: None, server: RunningCoordinator, open_page: PageOpener, locale: str, artifacts: Path
) -> None:
    words = WORDS[locale]
    page = open_page(server.url + "/", locale=locale)

    look_up(page, RETRIED)
    result = page.locator("#history-rows tr .result")
    expect(result).to_have_text(words["retry"])
    expect(page.locator("#history-rows tr td.detail")).to_contain_text(DETAIL)  # free text, as the worker wrote it
    page.locator(f'tr[data-topic="{BUREAU}"]').click()
    expect(page.locator("#explain-reason")).to_have_text(words["paused"])
    page.screenshot(path=artifacts / f"one-language-{locale}.png", full_page=True)

    page.locator("#lang-toggle").click()  # the other language: the same answers, in its words
    expect(result).to_have_text(words["other"])
    expect(page.locator("#explain-reason")).to_have_text(WORDS["en-US" if locale == "pt-BR" else "pt-BR"]["paused"])


def test_a_lookup_answered_before_the_screens_words_came_shows_them_once_they_come(
    retried: None, server: RunningCoordinator, open_page: PageOpener
) -> None:
    held: list[Route] = []  # the screen's messages, held back as a slow machine or network would
    page = open_page(
        server.url + "/", prepare=lambda page: page.route("**/static/messages.*.json", lambda route: held.append(route))
    )
    look_up(page, RETRIED)  # the form works before the words come
    result = page.locator("#history-rows tr .result")
    expect(result).to_have_text("retry")  # the code, as the API answers it: no words to show it in yet
    wait_until(lambda: held, 10, "the screen to ask for its messages")
    for route in held:
        route.continue_()
    expect(result).to_have_text(WORDS["pt-BR"]["retry"])
