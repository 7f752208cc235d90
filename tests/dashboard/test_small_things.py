"""The issue's small things on the screen: the anonymous caller named in the screen's language, an error left by
a refused change cleared once the same change succeeds, plurals, and numbers written as each language writes them."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, SYNC, publish, queue
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

WORDS = {
    "pt-BR": {"who": "anônimo (administrador)", "one": "1 de 1 fila", "two": "2 de 2 filas", "pending": "1.234"},
    "en-US": {"who": "anonymous (admin)", "one": "1 of 1 queue", "two": "2 of 2 queues", "pending": "1,234"},
}


@pytest.mark.parametrize("locale", list(WORDS))
def test_names_plurals_and_numbers_follow_the_language(
    api: httpx.Client, server: RunningCoordinator, open_page: PageOpener, locale: str
) -> None:
    words = WORDS[locale]
    publish(api, BUREAU, 1234)
    page = open_page(server.url + "/", locale=locale, width=1280, height=800)

    expect(page.locator("#who")).to_have_text(words["who"])
    expect(page.locator("#queue-count")).to_have_text(words["one"])
    expect(page.locator(f'tr[data-topic="{BUREAU}"] td[data-col="pending"]')).to_have_text(words["pending"])
    publish(api, SYNC, 2)
    expect(page.locator("#queue-count")).to_have_text(words["two"])


def test_an_error_is_cleared_once_the_same_change_succeeds(
    api: httpx.Client, server: RunningCoordinator, open_page: PageOpener
) -> None:
    publish(api, BUREAU, 10)
    publish(api, SYNC, 3)
    page = open_page(server.url + "/", width=1280, height=800)
    bureau = page.locator(f'tr[data-topic="{BUREAU}"] [data-action="set-priority"]')
    sync = page.locator(f'tr[data-topic="{SYNC}"] [data-action="set-priority"]')
    expect(bureau).to_have_value("5")

    bureau.fill("12")
    bureau.press("Enter")
    sync.fill("10")
    sync.press("Enter")
    errors = page.locator(".message.error")
    expect(errors).to_have_count(2)

    bureau.fill("7")
    bureau.press("Enter")
    wait_until(lambda: queue(api, BUREAU)["priority"] == 7, 10, f"the priority of {BUREAU} to be 7")
    expect(errors).to_have_count(1)  # the other queue's error is still to be dealt with
    expect(bureau).not_to_have_class("invalid")
