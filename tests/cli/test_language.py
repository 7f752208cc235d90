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
