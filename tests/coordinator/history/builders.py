"""Builders for the history tests: outcomes as settlement tells them, the history table on a test database, and
three messages run through a coordinator process (a retry then ok, an ok, a dead one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tests.e2e.coordinator_process import TOPIC as E2E_TOPIC
from tests.e2e.coordinator_process import CoordinatorProcess
from tests.waiting import wait_until
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.history import HistoryTable

TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"
OTHER_TOPIC = "MULTCOB02.1189.COBSINC.CONSULTA"
CPF = b"12345678909"
#: The keys of the messages ``settle_three`` runs through a coordinator process.
KEYS = ["00000000000", "00000000001", "00000000002"]
#: A moment with microseconds, in UTC: what the history gives back.
NOW = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)


def outcome(
    offset: int,
    result: Result = Result.OK,
    *,
    key: bytes | None = CPF,
    topic: str = TOPIC,
    attempt: int = 1,
    detail: str | None = None,
) -> Outcome:
    return Outcome(result, topic, offset % 4, offset, key, attempt, "farm-sp1", 3, f"task-{offset}", 1.25, detail)


@contextmanager
def history_table(url: str) -> Iterator[HistoryTable]:
    """The history table in the migrated state store at ``url``."""
    Store.open(url).close()
    table = HistoryTable(Database(url))
    try:
        yield table
    finally:
        table.close()


def complete(
    coordinator: CoordinatorProcess, farm_id: str, task: dict[str, Any], verdicts: dict[int, str]
) -> list[dict[str, Any]]:
    """Report ``task`` with a verdict per offset (``status:detail``), "ok" for the others; the tasks leased to
    the slot freed, in the same answer, as farms ask."""
    messages = task["messages"]
    results = [
        {"id": f"{E2E_TOPIC}/{p}/{o}", "status": verdicts[o].split(":")[0], "detail": verdicts[o].split(":")[1]}
        for p, o in zip(messages["partitions"], messages["offsets"], strict=True)
        if o in verdicts
    ]
    body = {
        "slots": [0],
        "wait_s": 0,
        "completions": [{"task_id": task["task_id"], "default": "ok", "results": results}],
    }
    answer = coordinator.api.post(f"/api/farms/{farm_id}/lease", json=body)
    assert answer.status_code == 200, answer.text
    tasks: list[dict[str, Any]] = answer.json()["tasks"]
    return tasks


def history_of(coordinator: CoordinatorProcess, key: str, count: int) -> list[dict[str, Any]]:
    """The attempts of ``key``, once the writer has flushed ``count`` of them."""

    def flushed() -> list[dict[str, Any]] | None:
        attempts: list[dict[str, Any]] = coordinator.call("GET", f"/api/messages?key={key}")["attempts"]
        return attempts if len(attempts) >= count else None

    return wait_until(flushed, 10, f"{count} attempt(s) of {key} in the history")


def settle_three(coordinator: CoordinatorProcess) -> None:
    """Three messages (``KEYS``) run by a farm: the first retried then ok, the second ok, the third dead at once."""
    coordinator.publish(E2E_TOPIC, len(KEYS))
    coordinator.call("PATCH", f"/api/queues/{E2E_TOPIC}/settings", {"max_attempts": 3, "backoff_s": 0})
    farm_id = coordinator.register("farm-sp1", 1)
    [first] = wait_until(lambda: coordinator.lease(farm_id, [0]), 10, "the first task")
    tasks = complete(coordinator, farm_id, first, {0: "retry:banco fora do ar", 2: "error:CPF inválido"})
    [again] = tasks or wait_until(lambda: coordinator.lease(farm_id, [0]), 10, "the retried message")
    assert again["messages"]["offsets"] == [0]
    assert complete(coordinator, farm_id, again, {}) == []
