"""Operator commands as a user runs them: a real coordinator process, real CLI processes, its API between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n")
    assert site.run("publish", TOPIC, "--csv", str(csv)).returncode == 0
    try:
        site.start(lambda: site.queue_count() == 1, f"the coordinator to answer on {site.url} with the published queue")
        # A queue with no worker is never scheduled, nor explained beyond that: give it one.
        configured = site.run("settings", TOPIC, "--command", '["worker.exe", "{input}"]')
        assert configured.returncode == 0, configured.stderr
        yield site
    finally:
        site.stop()


def test_queues_shows_the_figures(site: Site) -> None:
    result = site.run("queues")

    assert result.returncode == 0, result.stderr
    assert TOPIC in result.stdout
    assert "IMPORTACAO" in result.stdout
    assert "aguardando" in result.stdout  # the state as the screen says it


def test_pause_explain_resume(site: Site) -> None:
    assert site.run("pause", TOPIC).stdout.strip() == f"fila {TOPIC}: pausada"
    assert site.run("explain", TOPIC).stdout.strip() == f"{TOPIC}: A fila está pausada."
    assert site.run("resume", TOPIC).stdout.strip() == f"fila {TOPIC}: retomada"
    assert site.run("explain", TOPIC).stdout.strip() == f"{TOPIC}: Nenhuma farm conectada."


def test_a_base_can_be_paused(site: Site) -> None:
    assert site.run("pause", "MULTCOB03", "--base").returncode == 0
    assert site.run("explain", TOPIC).stdout.strip() == f"{TOPIC}: A base MULTCOB03 está pausada."


def test_priority_moves_and_sets(site: Site) -> None:
    assert site.run("priority", TOPIC, "--up").stdout.strip() == f"fila {TOPIC}: prioridade 6"
    assert site.run("priority", TOPIC, "--set", "2").stdout.strip() == f"fila {TOPIC}: prioridade 2"
    refused = site.run("priority", TOPIC, "--up", "--down")
    assert refused.returncode == 2
    assert "exactly one of" in refused.stderr


def test_base_limit_and_windows(site: Site) -> None:
    limit = site.run("base-limit", "MULTCOB03", "--max", "6", "--min", "1")
    added = site.run(
        "window", "add", "MULTCOB03", "--days", "mon-fri", "--from", "08:00", "--to", "18:00", "--max", "2"
    )
    listed = site.run("window", "list", "MULTCOB03")
    window_id = added.stdout.split()[1]
    removed = site.run("window", "remove", window_id)

    assert "máximo padrão 6, mínimo reservado 1" in limit.stdout
    assert "adicionada a MULTCOB03: seg,ter,qua,qui,sex 08:00–18:00 máx 2" in added.stdout
    assert "08:00–18:00 máx 2" in listed.stdout
    assert removed.stdout.strip() == f"janela {window_id} removida"


def test_an_invalid_window_is_refused_in_words(site: Site) -> None:
    result = site.run("window", "add", "MULTCOB03", "--days", "1", "--from", "08:00", "--to", "08:00", "--max", "2")

    assert result.returncode == 1
    assert "end equals start" in result.stderr
    assert site.run("window", "list", "MULTCOB03").stdout.count("08:00") == 0


def test_unknown_queue_and_unreachable_coordinator(site: Site) -> None:
    unknown = site.run("explain", "NOPE.1.X.Y")
    site.env["XTREAMING_URL"] = "http://127.0.0.1:9"
    unreachable = site.run("queues")

    assert unknown.returncode == 1
    assert "queue 'NOPE.1.X.Y' is not registered" in unknown.stderr
    assert unreachable.returncode == 1
    assert "did not answer" in unreachable.stderr


def test_farms_lists_registered_farms(site: Site) -> None:
    httpx.post(f"{site.url}/api/farms/register", json={"name": "farm-poa", "labels": {"site": "POA"}, "slots": 4})

    result = site.run("farms")

    assert "farm-poa" in result.stdout
    assert "site=POA" in result.stdout
    assert "0/4" in result.stdout


def test_farms_shows_the_slots_reserved_for_urgent_work(site: Site) -> None:
    farm = {"labels": {}, "slots": 4, "urgent_slots": 1, "urgent_priority": 8}
    httpx.post(f"{site.url}/api/farms/register", json={"name": "farm-urgent", **farm}).raise_for_status()
    httpx.post(f"{site.url}/api/farms/register", json={"name": "farm-plain", "labels": {}, "slots": 2})

    lines = site.run("farms").stdout.splitlines()

    urgent = next(line for line in lines if "farm-urgent" in line)
    plain = next(line for line in lines if "farm-plain" in line)
    assert "1 (prioridade ≥ 8)" in urgent
    assert "prioridade" not in plain
