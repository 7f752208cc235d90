"""The history over HTTP, from a real ``xtreaming coordinator`` process on SQLite and on PostgreSQL: a farm's
retries, successes and failures show attempt by attempt, by key and by message id; bad input is a clean 422."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.coordinator.history.builders import KEYS, history_of, settle_three
from tests.e2e.coordinator_process import TOPIC, CoordinatorProcess


@pytest.fixture
def coordinator(tmp_path: Path, store_url: str) -> Iterator[CoordinatorProcess]:
    process = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", store_url).start()
    yield process
    process.close()


@pytest.fixture(scope="module")
def quiet_coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    """One coordinator on SQLite, with nothing to run, for the requests it must refuse."""
    root = tmp_path_factory.mktemp("quiet")
    process = CoordinatorProcess(root, f"sqlite:///{root}/log.db", f"sqlite:///{root}/state.db").start()
    yield process
    process.close()


@pytest.fixture
def settled(coordinator: CoordinatorProcess) -> CoordinatorProcess:
    settle_three(coordinator)
    return coordinator


def test_a_key_shows_each_attempt_newest_first(settled: CoordinatorProcess) -> None:
    retried, ok = history_of(settled, KEYS[0], 2), history_of(settled, KEYS[1], 1)
    [dead] = history_of(settled, KEYS[2], 1)

    assert [(a["attempt"], a["result"], a["detail"]) for a in retried] == [
        (2, "ok", None),
        (1, "retry", "banco fora do ar"),  # kept as "attempt 1: banco fora do ar": the attempt is its own field
    ]
    assert [(a["message_id"], a["key"], a["farm"], a["slot"]) for a in retried] == [
        (f"{TOPIC}/0/0", KEYS[0], retried[0]["farm"], 0)
    ] * 2
    assert retried[0]["at"] >= retried[1]["at"]
    assert [(a["attempt"], a["result"]) for a in ok] == [(1, "ok")]
    assert (dead["result"], dead["detail"], dead["message_id"]) == ("dead", "CPF inválido", f"{TOPIC}/0/2")


def test_a_message_id_shows_its_attempts_oldest_first(settled: CoordinatorProcess) -> None:
    history_of(settled, KEYS[0], 2)

    attempts = settled.call("GET", f"/api/messages/{TOPIC}/0/0")

    assert [(a["attempt"], a["result"]) for a in attempts] == [(1, "retry"), (2, "ok")]
    missing = settled.api.get(f"/api/messages/{TOPIC}/0/99")
    assert missing.status_code == 404
    assert f"message {TOPIC}/0/99 is not in the log" in missing.json()["detail"]
    assert settled.api.get("/api/messages/MULTCOB09.1.IMPORTACAO.NADA/0/0").status_code == 404


def test_pages_of_a_key_follow_each_other(settled: CoordinatorProcess) -> None:
    everything = history_of(settled, KEYS[0], 2)

    first = settled.call("GET", f"/api/messages?key={KEYS[0]}&limit=1")
    second = settled.api.get("/api/messages", params={"key": KEYS[0], "limit": 1, "before": first["next"]}).json()

    assert first["attempts"] + second["attempts"] == everything
    assert second["next"] is None


def test_a_topic_and_a_time_range_narrow_the_lookup(settled: CoordinatorProcess) -> None:
    [newest, oldest] = history_of(settled, KEYS[0], 2)

    def attempts(**params: str) -> list[int]:
        answer = settled.api.get("/api/messages", params={"key": KEYS[0], **params})
        assert answer.status_code == 200, answer.text
        return [a["attempt"] for a in answer.json()["attempts"]]

    assert attempts(topic=TOPIC) == [2, 1]
    assert attempts(topic="MULTCOB02.1186.COBSINC.OUTRO") == []
    assert attempts(until=newest["at"]) == ([1] if newest["at"] != oldest["at"] else [])
    assert attempts(since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []
    assert settled.call("GET", "/api/messages?key=99999999999") == {"attempts": [], "next": None}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"key": "x" * 60_000}, "key"),  # longer URLs are refused before any route (HTTP clients and servers)
        ({"key": "1", "limit": 10**20}, "limit"),
        ({"key": "1", "limit": 0}, "limit"),
        ({"key": "1", "since": "2026-01-01T00:00:00"}, "since"),  # no zone
        ({"key": "1", "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "is not before until"),
        ({"key": "1", "until": "0001-01-01T00:00:00Z"}, "out of range"),
        ({"key": "1", "before": "not-a-cursor"}, "before: not a 'next' value"),
        ({"key": ""}, "key"),
        ({}, "key"),
    ],
)
def test_bad_lookups_are_refused_naming_what_is_wrong(
    quiet_coordinator: CoordinatorProcess, params: dict[str, Any], says: str
) -> None:
    answer = quiet_coordinator.api.get("/api/messages", params=params)

    assert answer.status_code == 422, answer.text
    assert says in answer.text


def test_the_largest_page_is_answered(quiet_coordinator: CoordinatorProcess) -> None:
    answer = quiet_coordinator.api.get("/api/messages", params={"key": KEYS[0], "limit": 1000})

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"attempts": [], "next": None}


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (f"/api/messages/{TOPIC}/x/1", "expected topic/partition/offset"),
        (f"/api/messages/{TOPIC}/0/-1", "expected topic/partition/offset"),
        (f"/api/messages/{TOPIC}/0/{10**30}", "out of range"),
    ],
)
def test_malformed_message_ids_are_refused(quiet_coordinator: CoordinatorProcess, path: str, says: str) -> None:
    answer = quiet_coordinator.api.get(path)

    assert answer.status_code == 422, answer.text
    assert says in answer.text


def test_metrics_show_what_waits_for_the_history_and_what_was_dropped(quiet_coordinator: CoordinatorProcess) -> None:
    answer = quiet_coordinator.api.get("/metrics")

    assert answer.status_code == 200, answer.text
    samples = {s.name: s.value for family in text_string_to_metric_families(answer.text) for s in family.samples}
    assert samples["xtreaming_history_buffered_attempts"] == 0
    assert samples["xtreaming_history_dropped_attempts_total"] == 0
