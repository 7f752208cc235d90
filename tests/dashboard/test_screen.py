"""The operator screen in a real browser against a real coordinator: figures, controls, live updates."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.coordinator.server import RunningCoordinator
from tests.dashboard.conftest import RENDER_TIMES, PageOpener
from tests.dashboard.site import (
    BAIXA,
    BUREAU,
    SYNC,
    arrange_three_queues,
    base,
    complete,
    heartbeating,
    lease,
    publish,
    queue,
    register,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

REFUSAL = "base MULTCOB03: min_workers 3 is above max_workers 2"
STATES_PT = {"running": "rodando", "waiting": "aguardando", "paused": "pausada", "done": "concluída"}


def row(page: Page, topic: str) -> Locator:
    return page.locator(f'tr[data-topic="{topic}"]')


def cell(page: Page, topic: str, column: str) -> Locator:
    return row(page, topic).locator(f'td[data-col="{column}"]')


def card(page: Page, name: str) -> Locator:
    return page.locator(f'article[data-base="{name}"]')


def confirm(page: Page) -> None:
    expect(page.locator("#confirm")).to_be_visible()
    page.locator("#confirm-ok").click()


def test_the_table_shows_each_queues_figures(
    api: httpx.Client, page: Page, artifacts: Path, open_page: PageOpener, server: RunningCoordinator
) -> None:
    arrange_three_queues(api)

    expect(page.locator("tr[data-topic]")).to_have_count(3)
    expect(cell(page, SYNC, "workers")).to_have_text("1")

    expect(page.locator("h1")).to_have_text("Acompanhamento de MultCobXtreaming")
    expected = {
        BUREAU: ("IMPORTACAO", "5", "aguardando", "0", "MULTCOB03 0/4", "0", "30"),
        SYNC: ("COBSINC", "8", "rodando", "1", "MULTCOB02 1/4", "0", "5"),
        BAIXA: ("IMPORTACAO", "5", "pausada", "0", "MULTCOB09 0/4", "0", "12"),
    }
    for topic, (kind, priority, state, workers, on_base, consumed, pending) in expected.items():
        api_row = queue(api, topic)
        expect(cell(page, topic, "kind")).to_have_text(kind)
        expect(cell(page, topic, "priority").locator("input")).to_have_value(priority)
        expect(cell(page, topic, "state")).to_have_text(state)
        expect(cell(page, topic, "workers")).to_have_text(workers)
        expect(cell(page, topic, "base")).to_have_text(on_base)
        expect(cell(page, topic, "consumed")).to_have_text(consumed)
        expect(cell(page, topic, "pending")).to_have_text(pending)
        expect(cell(page, topic, "failures")).to_have_text(str(api_row["failures"]))
        expect(cell(page, topic, "dead")).to_have_text(str(api_row["dead"]))
        assert (api_row["kind"], str(api_row["priority"]), STATES_PT[api_row["state"]]) == (kind, priority, state)
        assert (str(api_row["consumed"]), str(api_row["pending"])) == (consumed, pending)
    # The server's order: highest priority first, then by topic.
    assert page.locator("tr[data-topic]").evaluate_all("rows => rows.map(r => r.dataset.topic)") == [
        SYNC,
        BUREAU,
        BAIXA,
    ]
    expect(page.locator('tr[data-farm="farm-a"] td[data-col="slots"]')).to_have_text("1/4")
    expect(card(page, "MULTCOB02").locator('[data-field="usage"]')).to_have_text("1/4 em uso")

    page.screenshot(path=artifacts / "operator-screen.png", full_page=True)
    first = page.evaluate("performance.getEntriesByName('xtreaming:first-render')[0].startTime")
    RENDER_TIMES.append(f"3 queues: first render {first:.0f} ms after navigation start")


def test_pause_asks_first_and_resume_brings_the_queue_back(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    expect(cell(page, BUREAU, "state")).to_have_text("aguardando")

    row(page, BUREAU).locator('[data-action="pause"]').click()
    expect(page.locator("#confirm-text")).to_contain_text(BUREAU)
    page.locator("#confirm-cancel").click()
    assert queue(api, BUREAU)["state"] == "waiting"

    row(page, BUREAU).locator('[data-action="pause"]').click()
    confirm(page)
    expect(cell(page, BUREAU, "state")).to_have_text("pausada")
    assert queue(api, BUREAU)["state"] == "paused"

    row(page, BUREAU).locator('[data-action="resume"]').click()
    expect(cell(page, BUREAU, "state")).to_have_text("aguardando")
    assert queue(api, BUREAU)["state"] == "waiting"


def test_priority_buttons_and_the_priority_field_change_the_server_state(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    priority = cell(page, BUREAU, "priority").locator("input")
    expect(priority).to_have_value("5")

    row(page, BUREAU).locator('[data-action="up"]').click()
    expect(priority).to_have_value("6")
    assert queue(api, BUREAU)["priority"] == 6

    row(page, BUREAU).locator('[data-action="down"]').click()
    row(page, BUREAU).locator('[data-action="down"]').click()
    expect(priority).to_have_value("4")
    assert queue(api, BUREAU)["priority"] == 4

    priority.fill("9")
    priority.press("Enter")
    expect(page.locator(".message.error")).to_have_count(0)
    wait_until(lambda: queue(api, BUREAU)["priority"] == 9, 10, f"the priority of {BUREAU} to be 9")

    priority.fill("12")
    priority.press("Enter")
    expect(page.locator(".message.error")).to_contain_text("Prioridade: número inteiro de 0 a 9.")
    assert queue(api, BUREAU)["priority"] == 9


def test_a_valid_limit_edit_is_saved(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    limits = card(page, "MULTCOB03")
    expect(limits.locator('[data-field="max"]')).to_have_value("4")

    limits.locator('[data-field="max"]').fill("7")
    limits.locator('[data-field="min"]').fill("2")
    limits.locator('[data-action="save-limits"]').click()

    expect(limits.locator('[data-field="usage"]')).to_have_text("0/7 em uso")
    expect(cell(page, BUREAU, "base")).to_have_text("MULTCOB03 0/7")
    saved = base(api, "MULTCOB03")
    assert (saved["default_max_workers"], saved["min_workers"], saved["limit"]) == (7, 2, 7)


def test_limits_the_api_would_refuse_are_refused_in_the_form(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    limits = card(page, "MULTCOB03")
    expect(limits.locator('[data-field="max"]')).to_have_value("4")

    limits.locator('[data-field="max"]').fill("2")
    limits.locator('[data-field="min"]').fill("3")
    limits.locator('[data-action="save-limits"]').click()

    expect(limits.locator('[data-field="limits-error"]')).to_have_text(
        "O mínimo reservado não pode passar do limite padrão."
    )
    saved = base(api, "MULTCOB03")
    assert (saved["default_max_workers"], saved["min_workers"]) == (4, 0)


def test_pausing_a_base_asks_first_and_its_queues_show_it(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    panel = card(page, "MULTCOB03")

    panel.locator('[data-action="pause-base"]').click()
    expect(page.locator("#confirm-text")).to_contain_text("MULTCOB03")
    confirm(page)

    expect(panel.locator('[data-field="paused"]')).to_have_text("pausada")
    expect(cell(page, BUREAU, "state")).to_have_text("base pausada")
    assert base(api, "MULTCOB03")["paused"] is True

    panel.locator('[data-action="resume-base"]').click()
    expect(cell(page, BUREAU, "state")).to_have_text("aguardando")
    assert base(api, "MULTCOB03")["paused"] is False


@pytest.mark.parametrize(
    ("days", "start", "end", "maximum", "error"),
    [
        (None, "25:00", "18:00", "3", "De: use HH:MM, de 00:00 a 23:59."),
        (None, "08:00", "24:30", "3", "Até: use HH:MM, de 00:00 a 24:00."),
        (None, "08:00", "08:00", "3", "Até igual a De: para o dia todo use 00:00–24:00."),
        (None, "08:00", "18:00", "-1", "Máx.: número inteiro de 0 a 100000."),
        ([], "08:00", "18:00", "3", "Escolha pelo menos um dia da semana."),
    ],
)
def test_an_invalid_window_shows_the_error_and_saves_nothing(
    api: httpx.Client, page: Page, days: list[int] | None, start: str, end: str, maximum: str, error: str
) -> None:
    publish(api, BUREAU, 10)
    form = card(page, "MULTCOB03").locator('[data-form="window"]')
    expect(form).to_be_visible()
    if days is not None:
        for box in form.locator('input[type="checkbox"]').all():
            box.uncheck()

    form.locator('[data-field="start"]').fill(start)
    form.locator('[data-field="end"]').fill(end)
    form.locator('[data-field="window-max"]').fill(maximum)
    form.locator('[data-action="add-window"]').click()

    expect(card(page, "MULTCOB03").locator('[data-field="window-error"]')).to_have_text(error)
    assert base(api, "MULTCOB03")["windows"] == []


def test_a_valid_window_is_saved_shown_in_force_and_removed(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    panel = card(page, "MULTCOB03")
    form = panel.locator('[data-form="window"]')
    expect(form).to_be_visible()
    for box in form.locator('input[type="checkbox"]').all():
        box.check()  # every day, so the window is in force whenever the test runs

    form.locator('[data-field="start"]').fill("00:00")
    form.locator('[data-field="end"]').fill("24:00")
    form.locator('[data-field="window-max"]').fill("2")
    form.locator('[data-action="add-window"]').click()

    expect(panel.locator("li[data-window]")).to_have_text(re.compile(r"todos os dias 00:00–24:00: máx\. 2"))
    expect(cell(page, BUREAU, "base")).to_have_text("MULTCOB03 0/2 · 00:00–24:00")
    [window] = base(api, "MULTCOB03")["windows"]
    assert (window["weekdays"], window["start"], window["end"], window["max_workers"]) == (
        [0, 1, 2, 3, 4, 5, 6],
        "00:00",
        "24:00",
        2,
    )

    panel.locator('[data-action="remove-window"]').click()
    confirm(page)
    expect(panel.locator("li[data-window]")).to_have_count(0)
    assert base(api, "MULTCOB03")["windows"] == []


@pytest.mark.parametrize(
    ("problem", "shown"),
    [
        ({"detail": REFUSAL, "errors": []}, REFUSAL),
        (
            {
                "detail": "max_workers: Input should be less than or equal to 100000",
                "errors": [{"type": "less_than_equal", "loc": ["body", "max_workers"], "msg": "Input should be …"}],
            },
            "max_workers: Input should be less than or equal to 100000",
        ),
    ],
)
def test_an_api_refusal_reaches_the_operator_in_words(
    api: httpx.Client, page: Page, problem: dict[str, object], shown: str
) -> None:
    publish(api, BUREAU, 10)

    def refuse(route: Route) -> None:
        if route.request.method == "PATCH":
            route.fulfill(status=422, json=problem)
        else:
            route.continue_()

    page.route("**/api/bases/MULTCOB03", refuse)
    panel = card(page, "MULTCOB03")
    panel.locator('[data-field="max"]').fill("5")
    panel.locator('[data-action="save-limits"]').click()

    expect(page.locator(".message.error span")).to_have_text(f"O coordenador recusou (422): {shown}")
    expect(panel.locator('[data-field="limits-error"]')).to_contain_text(shown)


def test_a_completed_task_shows_up_without_reload(api: httpx.Client, page: Page) -> None:
    publish(api, BUREAU, 10)
    expect(cell(page, BUREAU, "pending")).to_have_text("10")
    page.evaluate("window.loadedOnce = true")

    [task] = lease(api, register(api), [0])
    complete(api, task)

    expect(cell(page, BUREAU, "consumed")).to_have_text("10")
    expect(cell(page, BUREAU, "pending")).to_have_text("0")
    expect(cell(page, BUREAU, "state")).to_have_text(re.compile(r"^concluída( às \d\d:\d\d)?$"))
    assert page.evaluate("window.loadedOnce") is True  # the same page: no reload


def test_a_lost_connection_shows_desconectado_and_recovers_by_itself(
    api: httpx.Client, page: Page, server: RunningCoordinator
) -> None:
    publish(api, BUREAU, 10)
    expect(page.locator("#connection")).to_have_text("conectado")

    server.stop()
    expect(page.locator("#connection")).to_have_text("desconectado — tentando reconectar…")
    expect(page.locator("body")).to_have_class("disconnected")

    server.start()
    publish(api, BUREAU, 5, first=10)
    expect(page.locator("#connection")).to_have_text("conectado")
    expect(cell(page, BUREAU, "pending")).to_have_text("15")


def test_explains_why_the_selected_queue_is_not_running(api: httpx.Client, page: Page) -> None:
    arrange_three_queues(api)

    row(page, BAIXA).click()
    expect(page.locator("#explain-topic")).to_have_text(BAIXA)
    expect(page.locator("#explain-reason")).to_have_text("A fila está pausada.")

    api.patch("/api/bases/MULTCOB03", json={"max_workers": 0})
    row(page, BUREAU).click()
    expect(page.locator("#explain-reason")).to_have_text("A base MULTCOB03 está no limite 0/0.")
    expect(row(page, BUREAU)).to_have_class("selected")


def test_sorting_and_filters(api: httpx.Client, open_page: PageOpener, server: RunningCoordinator) -> None:
    arrange_three_queues(api)
    page = open_page(server.url + "/", width=1920)  # wide enough for the pending column (folded below 1,680 px)
    expect(page.locator("tr[data-topic]")).to_have_count(3)
    topics = page.locator("tr[data-topic]")

    page.locator('th[data-sort="pending"]').click()
    expect(topics.first).to_have_attribute("data-topic", BUREAU)  # 30, 12, 5: most pending first
    assert topics.evaluate_all("rows => rows.map(r => r.dataset.topic)") == [BUREAU, BAIXA, SYNC]
    page.locator('th[data-sort="pending"]').click()
    expect(topics.first).to_have_attribute("data-topic", SYNC)
    expect(page.locator('th[data-sort="pending"]')).to_have_attribute("aria-sort", "ascending")

    page.locator("#filter-kind").select_option("IMPORTACAO")
    expect(topics).to_have_count(2)
    page.locator("#filter-base").select_option("MULTCOB09")
    expect(topics).to_have_count(1)
    expect(page.locator("#queue-count")).to_have_text("1 de 3 filas")
    page.locator("#filter-base").select_option("")
    page.locator("#filter-kind").select_option("")
    page.locator("#filter-text").fill("bureau")
    expect(topics).to_have_count(1)
    expect(topics.first).to_have_attribute("data-topic", BUREAU)


def test_lost_farms_stand_out(open_page: PageOpener, tmp_path: Path) -> None:
    running = RunningCoordinator(tmp_path, heartbeat_interval_s=0.2).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as api, heartbeating(running.url, "farm-alive"):
            register(api, "farm-gone", slots=2)
            wait_until(
                lambda: next(f for f in api.get("/api/farms").json() if f["id"] == "farm-gone")["lost"],
                10,
                "farm-gone to be shown lost",
            )
            page = open_page(running.url + "/")

            expect(page.locator('tr[data-farm="farm-gone"]')).to_have_class("lost")
            expect(page.locator('tr[data-farm="farm-gone"] td[data-col="state"]')).to_have_text("PERDIDA")
            expect(page.locator('tr[data-farm="farm-alive"] td[data-col="state"]')).to_have_text("ativa")
            expect(page.locator('tr[data-farm="farm-alive"] td[data-col="slots"]')).to_have_text("0/4")
            expect(page.locator("tr[data-farm]").first).to_have_attribute("data-farm", "farm-gone")
    finally:
        running.stop()


def test_english_by_toggle_and_by_accept_language(api: httpx.Client, page: Page, open_page: PageOpener) -> None:
    arrange_three_queues(api)
    expect(cell(page, BAIXA, "state")).to_have_text("pausada")

    page.locator("#lang-toggle").click()
    expect(page.locator("h1")).to_have_text("MultCobXtreaming monitor")
    expect(page.locator('th[data-sort="topic"]')).to_have_text("Queue")
    expect(cell(page, BAIXA, "state")).to_have_text("paused")
    expect(page.locator("#lang-toggle")).to_have_text("Português")
    page.reload()
    expect(page.locator("h1")).to_have_text("MultCobXtreaming monitor")  # the choice is kept

    english = open_page(page.url, locale="en-US")
    expect(english.locator("html")).to_have_attribute("lang", "en")
    expect(english.locator('th[data-sort="pending"]')).to_have_text("Pending")


def test_a_viewer_sees_the_controls_disabled(open_page: PageOpener, tmp_path: Path) -> None:
    from xtreaming.config import Role, Token
    from xtreaming.coordinator.api.auth import hash_token

    tokens = [
        Token(name="ana", role=Role.VIEWER, sha256=hash_token("viewer-secret")),
        Token(name="bruno", role=Role.OPERATOR, sha256=hash_token("operator-secret")),
    ]
    running = RunningCoordinator(tmp_path, tokens=tokens).start()
    try:
        with httpx.Client(base_url=running.url, headers={"Authorization": "Bearer operator-secret"}) as api:
            publish(api, BUREAU, 10, worker=False)  # settings are an admin's

        anonymous = open_page(running.url + "/")
        expect(anonymous.locator("#connection")).to_have_text("não autorizado")
        expect(anonymous.locator("#token-form")).to_be_visible()

        viewer = open_page(running.url + "/?token=viewer-secret")
        expect(row(viewer, BUREAU)).to_be_visible()
        expect(viewer.locator("#who")).to_have_text("ana (visualizador)")
        expect(viewer.locator("#readonly")).to_be_visible()
        for action in ("up", "down", "pause", "set-priority"):
            expect(row(viewer, BUREAU).locator(f'[data-action="{action}"]')).to_be_disabled()
        expect(card(viewer, "MULTCOB03").locator('[data-action="save-limits"]')).to_be_disabled()
        expect(card(viewer, "MULTCOB03").locator('[data-action="add-window"]')).to_be_disabled()
        assert "token" not in viewer.url  # kept in localStorage, not left in the address bar

        anonymous.locator("#token-input").fill("operator-secret")
        anonymous.locator("#token-input").press("Enter")
        expect(anonymous.locator("#who")).to_have_text("bruno (operador)")
        expect(row(anonymous, BUREAU).locator('[data-action="pause"]')).to_be_enabled()
        expect(anonymous.locator("#readonly")).to_be_hidden()
    finally:
        running.stop()
