"""Dead letters from the CLI: real ``xtreaming dlq`` processes against a coordinator process whose log holds
dead letters written as the coordinator writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.site import Site
from tests.coordinator.dead_letters.letters import TOPIC, cpf, kill, replayed_copies
from xtreaming.broker import open_broker

pytestmark = pytest.mark.slow


class DlqSite(Site):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.broker_url = self.env["XTREAMING_BROKER_URL"]

    def summary(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(f"{self.url}/api/dlq").raise_for_status().json()
        return found

    def copies(self) -> list[bytes]:
        log = open_broker(self.broker_url)
        try:
            return sorted(copy.key or b"" for _, copy in replayed_copies(log))
        finally:
            log.close()

    def audit(self) -> list[tuple[str, int]]:
        entries = httpx.get(f"{self.url}/api/audit").raise_for_status().json()
        return [(e["action"], e["details"]["letters"]) for e in reversed(entries) if e["action"].startswith("dlq.")]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DlqSite]:
    site = DlqSite(tmp_path)
    log = open_broker(site.broker_url)
    kill(log, [cpf(n) for n in range(5)], error="timeout", partitions=1)
    kill(log, [cpf(n) for n in range(5, 7)], error="CPF inválido", partitions=1)
    log.close()
    site.start(lambda: sum(t["open"] for t in site.summary()) == 7, "the dead letters indexed")
    yield site
    site.stop()


def test_list_groups_letters_by_error_and_show_finds_them_by_filter(site: DlqSite) -> None:
    listed = site.ok("dlq", "list")
    shown = site.ok("dlq", "show", TOPIC, "--error", "INVÁLIDO", "--json")
    by_key = site.ok("dlq", "show", TOPIC, "--key", cpf(3), "--key", cpf(4))

    assert TOPIC in listed
    assert "timeout" in listed
    assert "CPF inválido" in listed
    assert "7 mensagens abertas na DLQ em 1 fila" in listed
    letters = [json.loads(line) for line in shown.splitlines()]
    assert [(x["key"], x["error"], x["state"], x["attempts"]) for x in letters] == [
        (cpf(5), "CPF inválido", "dead", 3),
        (cpf(6), "CPF inválido", "dead", 3),
    ]
    assert cpf(3) in by_key
    assert cpf(4) in by_key
    assert cpf(2) not in by_key
    assert "2 de 2 mensagens da DLQ mostradas" in by_key
    site.env["XTREAMING_LANG"] = "en"
    english = site.ok("dlq", "list")
    assert "7 open dead letters in 1 queue" in english
    assert "Samples (key)" in english
    assert "Exemplos" not in english


def test_replay_asks_then_follows_the_replay_and_replays_each_letter_once(site: DlqSite) -> None:
    dry = site.ok("dlq", "replay", TOPIC, "--error", "timeout", "--dry-run")
    declined = site.run("dlq", "replay", TOPIC, "--error", "timeout", answer="n\n")
    nothing_yet = site.copies()
    replayed = site.run("dlq", "replay", TOPIC, "--error", "timeout", answer="y\n")
    again = site.run("dlq", "replay", TOPIC, "--error", "timeout", "--yes")

    assert f"5 dead letters of {TOPIC}; error contains 'timeout' would be replayed" in dry
    assert declined.returncode == 1
    assert "would be replayed. Go ahead?" in declined.stdout
    assert "nothing changed" in declined.stderr
    assert nothing_yet == []
    assert replayed.returncode == 0, replayed.stderr
    assert "concluído: 5 mensagens da DLQ de volta em" in replayed.stdout
    assert site.copies() == [cpf(n).encode() for n in range(5)]
    assert again.returncode == 1
    assert f"0 open dead letters match {TOPIC}; error contains 'timeout': nothing changed" in again.stderr
    [summary] = site.summary()
    assert (summary["open"], summary["replayed"]) == (2, 5)
    assert site.audit() == [("dlq.replay", 5)]


def test_skip_and_purge_are_audited_and_bad_times_are_refused(site: DlqSite) -> None:
    bad_time = site.run("dlq", "skip", TOPIC, "--since", "yesterday")
    skipped = site.ok("dlq", "skip", TOPIC, "--error", "inválido", "--since", "2000-01-01", "--yes")
    purged = site.ok("dlq", "purge", TOPIC, "--yes")
    nothing = site.run("dlq", "purge", TOPIC, "--yes")

    assert bad_time.returncode == 2
    assert "--since 'yesterday' is not a time" in bad_time.stderr
    assert f"2 dead letters of {TOPIC}; error contains 'inválido'; since 2000-01-01" in skipped
    assert skipped.rstrip().endswith("skipped")
    assert purged == f"2 dead letters of {TOPIC} purged\n"
    assert nothing.returncode == 1
    assert "0 skipped or replayed dead letters match" in nothing.stderr
    [summary] = site.summary()
    assert (summary["open"], summary["skipped"]) == (5, 0)
    assert site.audit() == [("dlq.skip", 2), ("dlq.purge", 2)]


def test_letter_states_read_in_the_chosen_language(site: DlqSite) -> None:
    site.ok("dlq", "skip", TOPIC, "--error", "CPF inválido", "--yes")

    portuguese = site.ok("dlq", "show", TOPIC)
    site.env["XTREAMING_LANG"] = "en"
    english = site.ok("dlq", "show", TOPIC)

    rows = [line for line in portuguese.splitlines() if cpf(0) in line or cpf(5) in line]
    assert "aberta" in rows[0]
    assert "ignorada" in rows[1]
    assert "skipped" not in portuguese
    assert "open" in next(line for line in english.splitlines() if cpf(0) in line)
    assert "skipped" in next(line for line in english.splitlines() if cpf(5) in line)
    assert "ignorada" not in english
