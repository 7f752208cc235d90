"""Terminal views speak the screen's language, pt-BR by default or English: the demo's live table and the CLI's
queue states, column names, numbers and plurals, one language per view."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from xtreaming.coordinator.dead_letter_records import LetterState
from xtreaming.coordinator.outcomes import Result
from xtreaming.dashboard import ASSETS
from xtreaming.demo.screen import progress_line, status_view
from xtreaming.screen_words import (
    REASONS,
    STATES,
    STATES_EN,
    WORDS,
    UnknownLanguage,
    code_word,
    counted,
    duration,
    language,
    number,
    reason_words,
)
from xtreaming.screen_words import word as word_for


@pytest.mark.parametrize(
    ("value", "digits", "text"), [(0, 0, "0"), (1234567, 0, "1.234.567"), (1903.25, 1, "1.903,2"), (5.0, 1, "5,0")]
)
def test_numbers_are_written_as_in_portuguese(value: float, digits: int, text: str) -> None:
    assert number(value, digits) == text
    assert number(value, digits, "pt-BR") == text


@pytest.mark.parametrize(
    ("value", "digits", "text"), [(0, 0, "0"), (1234567.5, 1, "1,234,567.5"), (1903.25, 1, "1,903.2"), (5.0, 1, "5.0")]
)
def test_numbers_are_written_as_in_english(value: float, digits: int, text: str) -> None:
    assert number(value, digits, "en") == text


@pytest.mark.parametrize(
    ("count", "lang", "text"),
    [(0, "pt-BR", "0 filas"), (1, "pt-BR", "1 fila"), (1234, "pt-BR", "1.234 filas"), (0, "en", "0 queues"),
     (1, "en", "1 queue"), (1234, "en", "1,234 queues")],
)  # fmt: skip
def test_plurals_are_right_in_both_languages(count: int, lang: str, text: str) -> None:
    assert counted(count, "queue", lang) == text


def test_the_language_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XTREAMING_LANG", raising=False)
    assert language() == "pt-BR"
    monkeypatch.setenv("XTREAMING_LANG", "en")
    assert language() == "en"
    assert number(1234.5, 1) == "1,234.5"
    monkeypatch.setenv("XTREAMING_LANG", "PT-br")
    assert language() == "pt-BR"
    monkeypatch.setenv("XTREAMING_LANG", "de")
    with pytest.raises(UnknownLanguage, match="'de' is not known"):
        language()


def test_both_catalogs_have_the_same_words() -> None:
    assert WORDS["pt-BR"].keys() == WORDS["en"].keys()
    assert STATES.keys() == STATES_EN.keys()


@pytest.mark.parametrize(("lang", "states"), [("pt-BR", STATES), ("en", STATES_EN)])
def test_terminal_words_mirror_the_screens(lang: str, states: dict[str, str]) -> None:
    catalog = json.loads((ASSETS / f"messages.{lang}.json").read_text(encoding="utf-8"))
    shared = [key for key in WORDS[lang] if key in catalog]
    assert len(shared) >= 12  # every column of the queue table, and the title
    assert {key: WORDS[lang][key] for key in shared} == {key: catalog[key] for key in shared}
    assert all(catalog[f"state.{state}"] == word for state, word in states.items())


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (45, "45 s"), (200, "3 min 20 s"), (7500, "2 h 05 min")])
def test_durations_read_as_on_the_screen(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_every_state_has_the_screens_word() -> None:
    catalog = json.loads((ASSETS / "messages.pt-BR.json").read_text(encoding="utf-8"))
    screen_states = {key.removeprefix("state."): word for key, word in catalog.items() if key.count(".") == 1
                     and key.startswith("state.") and key != "state.doneAt"}  # fmt: skip
    assert screen_states == STATES


STATUS: dict[str, Any] = {
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


def _rendered(status: dict[str, Any]) -> str:
    console = Console(width=240, record=True)
    console.print(status_view(status, "painel"))
    return console.export_text()


def test_the_demo_terminal_speaks_one_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XTREAMING_LANG", raising=False)
    text = _rendered(STATUS)

    for word in ("Fila", "Estado", "Falhas", "Pendentes", "falhando", "1.234.567", "janela 08:00–18:00", "PERDIDA"):
        assert word in text
    for english in ("Retry", "failing", "Failures"):
        assert english not in text
    assert progress_line(STATUS) == "consumidos 1.234.567, pendentes 10, DLQ 1, 0 msgs/s, 2 workers ocupados"


def test_the_demo_terminal_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XTREAMING_LANG", "en")
    text = _rendered(STATUS)

    for word in ("Queue", "State", "Failures", "Pending", "failing", "1,234,567", "window 08:00–18:00", "LOST",
                 "MultCobXtreaming monitor", "Ctrl-C to quit"):  # fmt: skip
        assert word in text, word
    for portuguese in ("Fila", "Estado", "Falhas", "falhando", "1.234.567", "janela", "PERDIDA", "encerrar"):
        assert portuguese not in text, portuguese
    assert progress_line(STATUS) == "consumed 1,234,567, pending 10, DLQ 1, 0 msgs/s, 2 busy workers"
    one_busy = {**STATUS, "farms": [{"id": "farm-a", "busy": 1, "slots": 4, "lost": False}]}
    assert progress_line(one_busy).endswith(", 1 busy worker")


def test_the_coordinators_explanations_read_as_on_the_screen() -> None:
    portuguese = json.loads((ASSETS / "messages.pt-BR.json").read_text(encoding="utf-8"))
    english = json.loads((ASSETS / "messages.en.json").read_text(encoding="utf-8"))

    assert [list(pair) for pair in REASONS] == portuguese["reasons"]
    assert english["reasons"] == []  # English shows the coordinator's own words
    assert word_for("explain.runnable", "pt-BR") == portuguese["explain.runnable"]


@pytest.mark.parametrize(
    ("reason", "lang", "text"),
    [
        ("paused", "pt-BR", "A fila está pausada."),
        ("paused", "en", "paused"),
        ("base B at its limit 3/3 in window 08:00–18:00", "pt-BR",
         "A base B está no limite 3/3 da janela 08:00–18:00."),
        ("waiting behind higher-priority queue B.1.K.P", "pt-BR", "Aguardando a fila B.1.K.P, de prioridade maior."),
        ("runnable", "en", "Nothing stops it: the queue gets the next free worker."),
        ("a reason no pattern knows", "pt-BR", "a reason no pattern knows"),
    ],
)  # fmt: skip
def test_explanations_are_translated_by_pattern(reason: str, lang: str, text: str) -> None:
    assert reason_words(reason, lang) == text


@pytest.mark.parametrize(
    ("kind", "code", "portuguese", "english"),
    [("result", "retry", "nova tentativa", "retried"), ("result", "duplicate", "duplicada", "duplicate"),
     ("letter", "dead", "aberta", "open"), ("letter", "replayed", "reprocessada", "replayed"),
     ("letter", "skipped", "ignorada", "skipped"), ("letter", "new-state", "new-state", "new-state")],
)  # fmt: skip
def test_the_apis_codes_are_shown_in_the_language(kind: str, code: str, portuguese: str, english: str) -> None:
    assert code_word(kind, code, "pt-BR") == portuguese
    assert code_word(kind, code, "en") == english


def test_every_letter_state_and_result_has_words() -> None:
    for lang in ("pt-BR", "en"):
        assert all(f"letter.{state}" in WORDS[lang] for state in LetterState)
        assert all(f"result.{result}" in WORDS[lang] for result in Result)
