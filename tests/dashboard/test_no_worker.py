"""A queue without a worker on the screen: its state and its explanation, in pt-BR and in English."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import PageOpener
from tests.dashboard.site import BUREAU, SYNC, publish

pytestmark = pytest.mark.browser


def test_a_queue_without_a_worker_says_so_in_the_table_and_in_the_explanation(
    api: httpx.Client, page: Page, open_page: PageOpener
) -> None:
    publish(api, SYNC, 3)  # given a worker
    publish(api, BUREAU, 10, worker=False)  # IMPORTACAO's defaults: no command, no handler

    bureau = page.locator(f'tr[data-topic="{BUREAU}"]')
    expect(bureau.locator('td[data-col="state"]')).to_have_text("sem worker configurado")
    expect(page.locator(f'tr[data-topic="{SYNC}"]').locator('td[data-col="state"]')).to_have_text("aguardando")
    bureau.click()
    expect(page.locator("#explain-reason")).to_contain_text("Nenhum worker configurado")

    english = open_page(page.url, locale="en-US")
    row = english.locator(f'tr[data-topic="{BUREAU}"]')
    expect(row.locator('td[data-col="state"]')).to_have_text("no worker configured")
    row.click()
    expect(english.locator("#explain-reason")).to_have_text("no worker configured")
