"""Terminal views speak the screen's pt-BR: the demo's live table and the CLI's queue states and numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from xtreaming.dashboard import ASSETS
from xtreaming.demo.screen import progress_line, status_view
from xtreaming.screen_words import STATES, duration, number


@pytest.mark.parametrize(
    ("value", "digits", "text"), [(0, 0, "0"), (1234567, 0, "1.234.567"), (1903.25, 1, "1.903,2"), (5.0, 1, "5,0")]
)
def test_numbers_are_written_as_in_portuguese(value: float, digits: int, text: str) -> None:
    assert number(value, digits) == text


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (45, "45 s"), (200, "3 min 20 s"), (7500, "2 h 05 min")])
def test_durations_read_as_on_the_screen(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_every_state_has_the_screens_word() -> None:
    catalog = json.loads((ASSETS / "messages.pt-BR.json").read_text(encoding="utf-8"))
    screen_states = {key.removeprefix("state."): word for key, word in catalog.items() if key.count(".") == 1
                     and key.startswith("state.") and key != "state.doneAt"}  # fmt: skip
    assert screen_states == STATES


def test_the_demo_terminal_speaks_one_language() -> None:
    status: dict[str, Any] = {
        "queues": [
            {
                "topic": "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU", "kind": "IMPORTACAO", "state": "failing",
                "priority": 5, "workers": 2, "base_in_use": 2, "base_limit": 3, "base_window": None,
                "consumed": 1234567, "pending": 10, "failures": 7, "dead": 1, "speed": 1903.4, "speed_10s": 0.0,
                "eta_s": None,
            }
        ],
        "bases": [{"name": "MULTCOB03", "in_use": 2, "limit": 3, "window": "08:00–18:00"}],
        "farms": [{"id": "farm-a", "busy": 2, "slots": 4, "lost": True}],
    }  # fmt: skip
    console = Console(width=240, record=True)
    console.print(status_view(status, "painel"))
    text = console.export_text()

    for word in ("Fila", "Estado", "Falhas", "Pendentes", "falhando", "1.234.567", "janela 08:00–18:00", "PERDIDA"):
        assert word in text
    for english in ("Retry", "failing", "Failures"):
        assert english not in text
    assert progress_line(status) == "consumidos 1.234.567, pendentes 10, DLQ 1, 0 msgs/s, 2 workers ocupados"
