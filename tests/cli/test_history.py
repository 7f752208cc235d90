"""``xtreaming history KEY`` against a running coordinator: each attempt in a table (times in the site's zone),
JSON for scripts, and a plain line when there is nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.cli.site import Site
from tests.coordinator.history.builders import KEYS, history_of, settle_three
from tests.e2e.coordinator_process import TOPIC, CoordinatorProcess


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A coordinator process that ran ``settle_three``, and a shell pointed at it."""
    root = tmp_path_factory.mktemp("history")
    coordinator = CoordinatorProcess(root, f"sqlite:///{root}/log.db", f"sqlite:///{root}/state.db").start()
    settle_three(coordinator)
    history_of(coordinator, KEYS[0], 2)
    site = Site(root)
    site.env["XTREAMING_URL"] = coordinator.url
    site.env["XTREAMING_TIME_ZONE"] = "America/Manaus"
    yield site
    coordinator.close()


def test_history_shows_each_attempt_of_a_key_newest_first(site: Site) -> None:
    shown = site.ok("history", KEYS[0])

    lines = [line for line in shown.splitlines() if f"{TOPIC}/0/0" in line]
    assert len(lines) == 2
    assert "ok" in lines[0]
    assert "nova tentativa" in lines[1]  # "retry", in the screen's words
    assert "banco fora do ar" in lines[1]
    assert "attempt" not in lines[1]  # the attempt has a column of its own
    assert all("farm-sp1/0" in line for line in lines)  # the farm and its slot
    assert "2 tentativas da chave 00000000000" in shown


def test_times_are_in_the_sites_zone(site: Site) -> None:
    [attempt] = json.loads(site.ok("history", KEYS[2], "--json"))["attempts"]

    shown = site.ok("history", KEYS[2])

    local = datetime.fromisoformat(attempt["at"]).astimezone(ZoneInfo("America/Manaus"))
    assert local.strftime("%Y-%m-%d %H:%M:%S") in shown
    assert "DLQ" in next(line for line in shown.splitlines() if "CPF inválido" in line)
    assert "CPF inválido" in shown


def test_json_is_the_apis_answer(site: Site) -> None:
    answer = json.loads(site.ok("history", KEYS[0], "--json", "--limit", "1"))

    assert [(a["attempt"], a["result"]) for a in answer["attempts"]] == [(2, "ok")]
    assert answer["next"] is not None


def test_a_key_without_history_says_so_and_succeeds(site: Site) -> None:
    assert site.ok("history", "99999999999").strip() == "Nenhuma tentativa registrada para 99999999999."
    assert site.ok("history", KEYS[0], "--topic", "MULTCOB02.1186.COBSINC.OUTRO").strip() == (
        "Nenhuma tentativa registrada para 00000000000."
    )
    site.env["XTREAMING_LANG"] = "en"
    assert site.ok("history", "99999999999").strip() == "No attempt recorded for 99999999999."


def test_a_refused_lookup_exits_1_with_the_coordinators_reason(site: Site) -> None:
    result = site.run("history", "x" * 2000)

    assert result.returncode == 1
    assert "key" in result.stderr


def test_a_limit_out_of_bounds_is_bad_usage(site: Site) -> None:
    result = site.run("history", KEYS[0], "--limit", "5000")

    assert result.returncode == 2
    assert "--limit" in result.stderr


def test_results_read_in_the_chosen_language(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(site.env, "XTREAMING_LANG", "pt-BR")  # the module's site: an earlier test chose English
    portuguese = site.ok("history", KEYS[0])
    monkeypatch.setitem(site.env, "XTREAMING_LANG", "en")
    english = site.ok("history", KEYS[0])

    assert "nova tentativa" in portuguese
    assert "retry" not in portuguese
    assert "retried" in english
    assert "nova tentativa" not in english
