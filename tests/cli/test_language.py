"""The CLI's tables speak one language: pt-BR by default, English with ``XTREAMING_LANG=en``, each with its own
headers, queue states, number format and plurals; an unknown language is refused before anything is printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.site import Site

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
CLIENTS = 1234


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    site.env.pop("XTREAMING_LANG", None)
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n" + "".join(f"{n};Cliente {n}\n" for n in range(1, CLIENTS + 1)))
    assert site.run("publish", TOPIC, "--csv", str(csv)).returncode == 0
    try:
        site.start(lambda: site.queue_count() == 1, f"the coordinator to answer on {site.url} with the published queue")
        yield site
    finally:
        site.stop()


def test_the_queue_table_is_portuguese_by_default(site: Site) -> None:
    text = site.ok("queues")

    for word in ("Fila", "Estado", "Pendentes", "Falhas", "sem worker configurado", "1.234", "1 fila"):
        assert word in text, word
    for english in ("Queue", "State", "Pending", "no worker configured", "1,234", "queue\n"):
        assert english not in text, english


def test_the_queue_table_in_english(site: Site) -> None:
    site.env["XTREAMING_LANG"] = "en"
    text = site.ok("queues")

    for word in ("Queue", "State", "Pending", "Failures", "no worker configured", "1,234", "1 queue"):
        assert word in text, word
    for portuguese in ("Fila", "Estado", "Pendentes", "sem worker", "1.234", "fila"):
        assert portuguese not in text, portuguese


def test_the_farm_table_in_each_language(site: Site) -> None:
    assert "Rótulos" in site.ok("farms")
    site.env["XTREAMING_LANG"] = "pt-BR"
    assert "Rótulos" in site.ok("farms")
    site.env["XTREAMING_LANG"] = "en"
    english = site.ok("farms")
    assert "Labels" in english
    assert "Rótulos" not in english


def test_an_unknown_language_is_refused(site: Site) -> None:
    site.env["XTREAMING_LANG"] = "fr"
    refused = site.run("queues")

    assert refused.returncode == 2
    assert "language 'fr' is not known" in refused.stderr
    assert "pt-BR, en" in refused.stderr
    assert refused.stdout == ""


def test_confirmations_and_explanations_are_portuguese_by_default(site: Site) -> None:
    paused = site.ok("pause", TOPIC)
    explained = site.ok("explain", TOPIC)
    moved = site.ok("priority", TOPIC, "--set", "3")
    limits = site.ok("base-limit", "MULTCOB03", "--max", "6", "--min", "1")
    added = site.ok("window", "add", "MULTCOB03", "--days", "mon-fri", "--from", "08:00", "--to", "18:00", "--max", "2")
    resumed = site.ok("resume", TOPIC)

    assert paused.strip() == f"fila {TOPIC}: pausada"
    assert explained.startswith(f"{TOPIC}: Nenhum worker configurado: defina um comando ou um handler")
    assert moved.strip() == f"fila {TOPIC}: prioridade 3"
    assert limits.strip() == "base MULTCOB03: em uso 0/6; máximo padrão 6, mínimo reservado 1"
    assert added.split(":", 1)[1].strip() == "seg,ter,qua,qui,sex 08:00–18:00 máx 2"
    assert resumed.strip() == f"fila {TOPIC}: retomada"
    for english in ("queue", "paused", "priority", "no worker", "in use", "max", "mon"):
        assert english not in paused + explained + moved + limits + added + resumed, english


def test_confirmations_and_explanations_in_english(site: Site) -> None:
    site.env["XTREAMING_LANG"] = "en"

    assert site.ok("pause", "MULTCOB03", "--base").strip() == "base MULTCOB03: paused"
    assert site.ok("explain", TOPIC).strip() == f"{TOPIC}: no worker configured"
    assert site.ok("priority", TOPIC, "--up").strip() == f"queue {TOPIC}: priority 6"
    assert site.ok("resume", "MULTCOB03", "--base").strip() == "base MULTCOB03: resumed"
    assert "sat,sun 22:00–06:00 max 4" in site.ok(
        "window", "add", "MULTCOB03", "--days", "5,6", "--from", "22:00", "--to", "06:00", "--max", "4"
    )


def test_bulk_summaries_in_each_language(site: Site) -> None:
    portuguese = site.ok("bulk", "pause", "--base", "MULTCOB03", "--dry-run")
    site.env["XTREAMING_LANG"] = "en"
    english = site.ok("bulk", "pause", "--base", "MULTCOB03")

    assert "pausar base=MULTCOB03 kind=* pattern=*: 1 fila no filtro; seriam alteradas: 1" in portuguese
    assert "pause base=MULTCOB03 kind=* pattern=*: 1 queue matched, changed 1" in english
