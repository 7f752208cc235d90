"""The screen's history lookup and dead-letter panel in a real browser against a real coordinator: a key's
attempts are found, and a replay from the screen (counted first, confirmed) puts the letter back once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.site import BUREAU, lease, publish, queue, register
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

GOOD, BAD = "00000000000", "00000000001"
ERROR = "CPF inválido na base"


@pytest.fixture
def settled(api: httpx.Client) -> dict[str, Any]:
    """Two messages on BUREAU run once: GOOD ends ok, BAD dies (an error is final) with ``ERROR``."""
    publish(api, BUREAU, 2)
    [task] = lease(api, register(api), [0])
    bad = f"{BUREAU}/0/1"
    body = {"default": "ok", "results": [{"id": bad, "status": "error", "detail": ERROR}]}
    answer = api.post(f"/api/tasks/{task['task_id']}/complete", json=body)
    assert answer.json()["dead"] == 1, answer.text
    wait_until(lambda: open_letters(api) == 1, 10, "the dead letter to be indexed")
    return task


def open_letters(api: httpx.Client) -> int:
    return sum(topic["open"] for topic in api.get("/api/dlq").json() if topic["topic"] == BUREAU)


def history_rows(page: Page, key: str) -> None:
    page.locator("#history-key").fill(key)
    page.locator("#history-form button[type=submit]").click()


def test_the_history_lookup_shows_a_keys_attempts(
    api: httpx.Client, settled: dict[str, Any], page: Page, artifacts: Path
) -> None:
    history_rows(page, BAD)

    row = page.locator("#history-rows tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(BUREAU)
    expect(row.locator(".result")).to_have_text("DLQ")
    expect(row.locator("td.detail")).to_have_text(ERROR)
    expect(page.locator("#history-note")).to_contain_text(f"1 tentativa de {BAD}")
    history_rows(page, GOOD)
    expect(page.locator("#history-rows tr .result")).to_have_text("ok")
    history_rows(page, "99999999999")
    expect(page.locator("#history-note")).to_have_text("Nenhuma tentativa registrada para 99999999999.")
    page.screenshot(path=str(artifacts / "history-lookup.png"), full_page=True)


def test_a_replay_from_the_screen_is_counted_confirmed_and_lands_once(
    api: httpx.Client, settled: dict[str, Any], page: Page, artifacts: Path
) -> None:
    pending_before = queue(api, BUREAU)["pending"]
    letters = page.locator(f'#dlq-list .card[data-topic="{BUREAU}"]')
    expect(letters.locator("tr[data-error]")).to_have_count(1)
    expect(letters.locator("tr[data-error] td.detail")).to_have_text(ERROR)

    letters.locator("tr[data-error] button.replay").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(f"Reprocessar 1 mensagem de {BUREAU}")
    page.screenshot(path=str(artifacts / "dlq-replay-confirm.png"), full_page=True)
    page.locator("#confirm-ok").click()

    expect(page.locator(".message.info")).to_contain_text("volta para a fila")
    wait_until(lambda: queue(api, BUREAU)["pending"] == pending_before + 1, 10, "the replayed message to be read")
    expect(letters.locator("[data-col=counts]")).to_contain_text("0 abertas · 1 reprocessada")
    assert open_letters(api) == 0
    assert queue(api, BUREAU)["pending"] == pending_before + 1  # once, not twice
