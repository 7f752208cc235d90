"""10,000 dead messages replayed by a real coordinator process, SIGKILLed in the middle of the replay: once it
is started again the replay finishes, every letter is on the work topic exactly once (by its
``xtreaming-replay-of`` header), a second request finds nothing to replay, and the copies are processed again.
The state store is SQLite, then PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from tests.broker.contract import read_all
from tests.e2e.coordinator_process import TOPIC, CoordinatorProcess
from tests.services import fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.coordinator.dead_letter_records import REPLAY_OF

pytestmark = pytest.mark.slow

DEAD = 10_000
#: Fast enough to finish in seconds, slow enough for the kill to land in the middle.
RATE_PER_S = 2500


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def coordinator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CoordinatorProcess]:
    sqlite = nullcontext(f"sqlite:///{tmp_path}/state.db")
    with fresh_postgres_schema() if request.param == "postgres" else sqlite as database_url:
        process = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", database_url)
        yield process.start()
        process.close()


def work_off(coordinator: CoordinatorProcess, farm_id: str, count: int, verdict: str, detail: str | None) -> None:
    """Play the farm: lease tasks of ``TOPIC`` and report each with ``verdict`` until ``count`` messages are settled."""
    settled = 0

    def lease_and_report() -> bool:
        nonlocal settled
        answer = coordinator.call("POST", f"/api/farms/{farm_id}/lease", {"slots": [0], "wait_s": 0.5})
        for task in answer["tasks"]:
            coordinator.call("POST", f"/api/tasks/{task['task_id']}/complete", {"default": verdict, "detail": detail})
            settled += len(task["messages"]["offsets"])
        return settled >= count

    wait_until(lease_and_report, 120, f"{count} messages settled as {verdict}", every_s=0)
    assert settled == count


def replay_state(coordinator: CoordinatorProcess, replay_id: int) -> dict[str, Any]:
    state: dict[str, Any] = coordinator.call("GET", f"/api/dlq/replays/{replay_id}")
    return state


def test_a_replay_killed_midway_lands_each_of_10000_letters_once(coordinator: CoordinatorProcess) -> None:
    coordinator.publish(TOPIC, DEAD)
    coordinator.call("PATCH", f"/api/queues/{TOPIC}/settings", {"max_attempts": 1, "batch_size": 1000})
    farm_id = coordinator.register("farm-1", 1)
    work_off(coordinator, farm_id, DEAD, "error", "CPF inválido")
    wait_until(
        lambda: (
            coordinator.call("GET", "/api/dlq")
            == [
                {
                    "topic": TOPIC,
                    "open": DEAD,
                    "replayed": 0,
                    "skipped": 0,
                    "errors": [
                        {
                            "error": "CPF inválido",
                            "count": DEAD,
                            "samples": [{"id": f"{TOPIC}.DLQ/0/{n}", "key": f"{n:011d}"} for n in range(3)],
                        }
                    ],
                }
            ]
        ),
        30,
        "every dead letter indexed",
    )

    started = coordinator.call(
        "POST", f"/api/dlq/{TOPIC}/replay", {"filter": {"error": "inválido"}, "rate_per_s": RATE_PER_S}
    )
    replay_id = started["replay_id"]
    wait_until(lambda: replay_state(coordinator, replay_id)["done"] >= DEAD // 4, 30, "a quarter replayed")
    coordinator.kill()
    log = open_broker(coordinator.broker_url)
    try:
        copies_at_kill = len(_copies(log))
        coordinator.start()
        finished = wait_until(
            lambda: (s := replay_state(coordinator, replay_id))["state"] != "running" and s, 60, "the replay resumed"
        )
        copies = _copies(log)
    finally:
        log.close()

    assert started["matched"] == DEAD
    assert DEAD // 4 <= copies_at_kill < DEAD, "the kill must land in the middle of the replay"
    assert (finished["state"], finished["total"], finished["done"]) == ("finished", DEAD, DEAD)
    assert Counter(copies.values()) == {1: DEAD}
    assert set(copies) == {f"{TOPIC}.DLQ/0/{n}".encode() for n in range(DEAD)}
    again = coordinator.api.post(f"/api/dlq/{TOPIC}/replay", json={})
    assert again.status_code == 404
    assert again.json()["detail"].endswith("nothing changed")
    [summary] = coordinator.call("GET", "/api/dlq")
    assert (summary["open"], summary["replayed"]) == (0, DEAD)

    work_off(coordinator, farm_id, DEAD, "ok", None)  # the copies are work like any other
    acked = coordinator.acked(TOPIC)
    assert sorted(acked[offset] for offset in range(DEAD, 2 * DEAD)) == [1] * DEAD


def _copies(log: Any) -> Counter[bytes]:
    """How many copies of each DLQ record the work topic holds, by the record's message id."""
    return Counter(
        dict(m.headers)[REPLAY_OF] for ms in read_all(log, TOPIC).values() for m in ms if REPLAY_OF in dict(m.headers)
    )
