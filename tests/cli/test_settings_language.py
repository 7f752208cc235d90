"""Profiles, queue settings and schedules from the CLI speak one language: pt-BR by default, English with
``XTREAMING_LANG=en``, in their confirmations, tables, notes, numbers, seconds and plurals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site
from tests.waiting import wait_until
from xtreaming.schedule_commands import describe_source, outcome

QUEUE = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
REQUESTS = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
NOOP = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    site.env.pop("XTREAMING_LANG", None)
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n")
    site.ok("publish", QUEUE, "--csv", str(csv))
    site.start(lambda: site.queue_count() == 1, f"the coordinator to answer on {site.url} with the published queue")
    yield site
    site.stop()


def profiles_and_settings(site: Site) -> tuple[str, str, str, str, str]:
    """A profile with a worker and one without, the list, a queue's settings with an override, a removal."""
    added = site.ok(
        "profile", "add", r"MULTCOB03\..*", "--handler", NOOP, "--batch-size", "1500", "--timeout", "0.5",
        "--label", "os=linux",
    )  # fmt: skip
    bare = site.ok("profile", "add", "NADA.*", "--max-attempts", "2")
    listed = site.ok("profile", "list")
    shown = site.ok("settings", QUEUE, "--max-workers", "3")
    removed = site.ok("profile", "remove", "2")
    return added, bare, listed, shown, removed


def test_profiles_and_settings_are_portuguese_by_default(site: Site) -> None:
    added, bare, listed, shown, removed = profiles_and_settings(site)

    assert added.strip() == rf"perfil 1 (posição 0): MULTCOB03\..* → handler {NOOP}"
    assert bare.splitlines()[0] == "perfil 2 (posição 1): NADA.* → sem worker"
    assert bare.splitlines()[1].startswith("atenção: o perfil não indica worker")
    for words in ("Padrão", "Lote", "Tempo limite", "Tentativas", "Rótulos", "Uma por chave", "1.500", "0,5 s"):
        assert words in listed, words
    assert "conforme o tipo" in listed  # a profile leaves one-per-key to each queue's kind
    assert shown.splitlines()[0] == f"fila {QUEUE}: segue o perfil 1; * definido na própria fila"
    for line in ("  lote: 1.500", "  tempo limite: 0,5 s", "  rótulos exigidos: os=linux", "  máximo de workers*: 3"):
        assert line in shown.splitlines(), line
    assert "  uma por chave: sim" in shown.splitlines()  # IMPORTACAO's default
    assert removed.strip() == "perfil 2 removido"
    everything = added + bare + listed + shown + removed
    for english in ("profile", "position", "follows", "batch", "Timeout", "by kind", "note", "removed", "0.5"):
        assert english not in everything, english


def test_profiles_and_settings_in_english(site: Site) -> None:
    site.env["XTREAMING_LANG"] = "en"
    added, bare, listed, shown, removed = profiles_and_settings(site)

    assert added.strip() == rf"profile 1 (position 0): MULTCOB03\..* → handler {NOOP}"
    assert bare.splitlines() == [
        "profile 2 (position 1): NADA.* → no worker",
        "note: it names no worker: the queues it matches will not run until one is set",
    ]
    for words in ("Pattern", "Batch", "Timeout", "Attempts", "Labels", "One per key", "1,500", "0.5 s", "by kind"):
        assert words in listed, words
    assert shown.splitlines()[0] == f"queue {QUEUE}: follows profile 1; * set on the queue"
    for line in ("  batch size: 1,500", "  timeout: 0.5 s", "  required labels: os=linux", "  max workers*: 3"):
        assert line in shown.splitlines(), line
    assert "  one per key: on" in shown.splitlines()
    assert removed.strip() == "profile 2 removed"
    everything = added + bare + listed + shown + removed
    for portuguese in ("perfil", "posição", "segue", "Lote", "Tempo limite", "conforme", "sem worker", "0,5", "1.500"):
        assert portuguese not in everything, portuguese


def a_schedule_that_ticks(site: Site) -> tuple[str, str, str]:
    """A fixed message published every second: added, listed once it has ticked, removed."""
    added = site.ok("schedule", "add", REQUESTS, "--cron", "* * * * * *", "--value", "<req/>", "--misfire", "skip")

    def ticked() -> bool:
        schedules = httpx.get(f"{site.url}/api/schedules").raise_for_status().json()
        return bool(schedules and schedules[0]["last"] and schedules[0]["last"]["state"] == "published")

    wait_until(ticked, 15, "a tick publishing the fixed message")
    listed = site.ok("schedule", "list")
    removed = site.ok("schedule", "remove", "1")
    return added, listed, removed


def test_schedules_are_portuguese_by_default(site: Site) -> None:
    added, listed, removed = a_schedule_that_ticks(site)

    assert added.startswith(f"agendamento 1 adicionado: {REQUESTS} em '* * * * * *', próxima execução 20")
    for words in ("Fila", "Publica", "Perdidos", "Último", "Resultado", "Próximo", "mensagem (sem chave) = <req/>"):
        assert words in listed, words
    assert "pular" in listed  # --misfire skip
    assert "1 mensagem publicada" in listed
    assert "1 agendamento" in listed
    assert removed == "agendamento 1 removido\n"
    for english in ("schedule", "added", "next tick", "message", "no key", "published", "skip", "removed"):
        assert english not in added + listed + removed, english


def test_schedules_in_english(site: Site) -> None:
    site.env["XTREAMING_LANG"] = "en"
    added, listed, removed = a_schedule_that_ticks(site)

    assert added.startswith(f"schedule 1 added: {REQUESTS} at '* * * * * *', next tick 20")
    for words in ("Queue", "Publishes", "Missed", "Last", "Result", "Next", "message (no key) = <req/>", "skip"):
        assert words in listed, words
    assert "1 message published" in listed
    assert "1 schedule" in listed
    assert removed == "schedule 1 removed\n"
    for portuguese in ("agendamento", "adicionado", "próxima", "mensagem", "sem chave", "publicada", "pular"):
        assert portuguese not in added + listed + removed, portuguese


@pytest.mark.parametrize(
    ("lang", "tick", "text"),
    [
        ("pt-BR", {"state": "published", "published": 1234}, "1.234 mensagens publicadas"),
        ("en", {"state": "published", "published": 1234}, "1,234 messages published"),
        ("pt-BR", {"state": "failed", "published": 1, "error": "CSV gone"}, "falhou após 1 mensagem: CSV gone"),
        ("en", {"state": "failed", "published": 0, "error": "CSV gone"}, "failed after 0 messages: CSV gone"),
        ("pt-BR", {"state": "claimed", "published": 2500}, "publicando (2.500 até agora)"),
        ("en", {"state": "claimed", "published": 2500}, "publishing (2,500 so far)"),
        ("pt-BR", {"state": "skipped", "published": 0, "missed": 0}, "pulada (perdida numa queda)"),
        ("pt-BR", {"state": "skipped", "published": 0, "missed": 2}, "pulada (3 perdidas numa queda)"),
        ("en", {"state": "skipped", "published": 0, "missed": 0}, "skipped (missed during an outage)"),
        ("en", {"state": "skipped", "published": 0, "missed": 1999}, "skipped (2,000 missed during an outage)"),
    ],
)
def test_a_ticks_outcome_in_each_language(
    monkeypatch: pytest.MonkeyPatch, lang: str, tick: dict[str, object], text: str
) -> None:
    monkeypatch.setenv("XTREAMING_LANG", lang)
    assert outcome(tick) == text


@pytest.mark.parametrize(
    ("lang", "source", "text"),
    [
        ("pt-BR", {"kind": "csv", "path": "/d/c.csv", "key_column": "cpf"}, "CSV /d/c.csv (chave cpf)"),
        ("en", {"kind": "csv", "path": "/d/c.csv", "key_column": "cpf"}, "CSV /d/c.csv (key cpf)"),
        ("pt-BR", {"kind": "message", "key": "123", "value": "<req/>"}, "mensagem 123 = <req/>"),
        ("en", {"kind": "callable", "target": "feeds:pending"}, "callable feeds:pending"),
        ("pt-BR", {"kind": "callable", "target": "feeds:pending"}, "função feeds:pending"),
    ],
)
def test_what_a_schedule_publishes_in_each_language(
    monkeypatch: pytest.MonkeyPatch, lang: str, source: dict[str, object], text: str
) -> None:
    monkeypatch.setenv("XTREAMING_LANG", lang)
    assert describe_source(source) == text
