"""The coordinator's API through real HTTP, with a scripted farm."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.workers import WORKER, give_workers_over
from tests.services import fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.config import Settings
from xtreaming.coordinator.service import Assignment, Coordinator
from xtreaming.farm.protocol import read_lease
from xtreaming.wire import lease_frame

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


def publish(api: httpx.Client, topic: str, keys: list[str]) -> None:
    body = {"messages": [{"key": k, "value": f"<cliente cpf='{k}'/>"} for k in keys], "partitions": 1}
    response = api.post(f"/api/topics/{topic}/messages", json=body)
    assert response.status_code == 200, response.text
    give_workers_over(api)


def register(api: httpx.Client, name: str = "farm-a", slots: int = 2) -> str:
    response = api.post("/api/farms/register", json={"name": name, "labels": {"os": "windows"}, "slots": slots})
    assert response.status_code == 200, response.text
    farm_id: str = response.json()["farm_id"]
    return farm_id


def lease(api: httpx.Client, farm_id: str, slots: list[int], wait_s: float = 0) -> list[dict[str, Any]]:
    response = api.post(f"/api/farms/{farm_id}/lease", json={"slots": slots, "wait_s": wait_s})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def complete(api: httpx.Client, task: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "ok", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def acks(server: RunningCoordinator, topic: str) -> list[dict[str, Any]]:
    log = open_broker(server.settings().broker_url)
    try:
        if f"{topic}.ACK" not in log.list_topics():
            return []
        return [json.loads(m.value) for m in log.read(f"{topic}.ACK", 0, 0, max_records=100_000)]
    finally:
        log.close()


def queue_row(api: httpx.Client, topic: str = TOPIC) -> dict[str, Any]:
    response = api.get(f"/api/queues/{topic}")
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


def test_a_farm_leases_completes_and_every_message_is_acked_once(api: httpx.Client, server: RunningCoordinator) -> None:
    publish(api, TOPIC, [f"{i:011d}" for i in range(1200)])
    farm_id = register(api)

    tasks = lease(api, farm_id, [0, 1])
    results = [complete(api, task) for task in tasks]
    tasks += lease(api, farm_id, [0])
    results.append(complete(api, tasks[-1]))

    assert [len(t["messages"]["offsets"]) for t in tasks] == [500, 500, 200]
    assert (tasks[0]["base"], tasks[0]["kind"]) == ("MULTCOB03", "IMPORTACAO")
    assert tasks[0]["messages"]["values"][0] == "<cliente cpf='00000000000'/>"
    assert sum(r["ok"] for r in results) == 1200
    assert len({(a["partition"], a["offset"]) for a in acks(server, TOPIC)}) == 1200
    assert len(acks(server, TOPIC)) == 1200
    assert queue_row(api)["consumed"] == 1200


def test_a_farm_asking_for_framed_answers_gets_the_messages_untouched(api: httpx.Client) -> None:
    values = [b"<cliente nome='Jo\xc3\xa3o'/>\n", b"\xff\x00\n\xfe", b"", b'{"cpf":"4"}']
    body = {"messages": [{"key": str(i), "value": base64.b64encode(v).decode(), "encoding": "base64"}
                         for i, v in enumerate(values)], "partitions": 1}  # fmt: skip
    settings = {"batch_size": 2, "command": list(WORKER)}
    api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
    api.post(f"/api/topics/{TOPIC}/messages", json=body).raise_for_status()
    farm_id = register(api)

    framed = {"Accept": lease_frame.MEDIA_TYPE}
    response = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [0, 1], "wait_s": 2}, headers=framed)

    assert response.headers["content-type"] == lease_frame.MEDIA_TYPE
    answer = read_lease(response.content)
    assert [columns.values for _, columns in answer.tasks] == [values[:2], values[2:]]
    assert [columns.keys for _, columns in answer.tasks] == [[b"0", b"1"], [b"2", b"3"]]
    assert [data["messages"] for data, _ in answer.tasks] == [{"count": 2, "headers": None}] * 2


def test_a_long_poll_wakes_up_when_a_message_arrives(
    api: httpx.Client, server: RunningCoordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm_id = register(api)
    publish(api, "MULTCOB02.1186.COBSINC.LOCALIZACAO", ["1"])
    complete(api, lease(api, farm_id, [0])[0])
    coordinator = server.app.state.coordinator
    answers: list[int] = []

    def counted_lease(farm: str, slots: Sequence[int]) -> list[Assignment]:
        assignments = Coordinator.lease(coordinator, farm, slots)
        answers.append(len(assignments))
        return assignments

    monkeypatch.setattr(coordinator, "lease", counted_lease)
    started = time.monotonic()
    with httpx.Client(base_url=str(api.base_url), timeout=30) as other:
        got: list[list[dict[str, Any]]] = []
        waiter = threading.Thread(target=lambda: got.append(lease(other, farm_id, [0], wait_s=20)))
        waiter.start()
        # Found nothing, so it now waits (it holds the coordinator's lock until it does): publish.
        wait_until(lambda: 0 in answers, 10, "the long poll to find no work")
        publish(api, "MULTCOB02.1186.COBSINC.LOCALIZACAO", ["2"])
        waiter.join(timeout=20)

    assert got[0][0]["messages"]["keys"] == ["2"]
    assert answers[0] == 0
    assert answers[-1] == 1
    assert time.monotonic() - started < 10  # woken by the message, not by the end of its 20 s wait


def test_pause_resume_and_priority_change_the_servers_state(api: httpx.Client) -> None:
    publish(api, TOPIC, ["1", "2"])
    farm_id = register(api)

    assert api.post(f"/api/queues/{TOPIC}/pause").json()["state"] == "paused"
    assert lease(api, farm_id, [0]) == []
    assert api.get(f"/api/queues/{TOPIC}/explain").json()["reason"] == "paused"
    assert api.post(f"/api/queues/{TOPIC}/resume").json()["state"] == "waiting"
    assert api.post(f"/api/queues/{TOPIC}/priority", json={"delta": 1}).json()["priority"] == 6
    assert api.post(f"/api/queues/{TOPIC}/priority", json={"priority": 2}).json()["priority"] == 2
    assert len(lease(api, farm_id, [0])) == 1


def test_base_limits_and_windows(api: httpx.Client) -> None:
    publish(api, TOPIC, ["1"])

    limits = api.patch("/api/bases/MULTCOB03", json={"max_workers": 6, "min_workers": 1}).json()
    added = api.post(
        "/api/bases/MULTCOB03/windows",
        json={"weekdays": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "max_workers": 2},
    )
    windows = api.get("/api/bases/MULTCOB03/windows").json()
    removed = api.delete(f"/api/windows/{added.json()['id']}")

    assert (limits["default_max_workers"], limits["min_workers"]) == (6, 1)
    assert added.status_code == 201
    assert [(w["start"], w["end"], w["max_workers"]) for w in windows] == [("08:00", "18:00", 2)]
    assert removed.status_code == 204
    assert api.get("/api/bases/MULTCOB03/windows").json() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("get", "/api/queues/NOPE.1.X.Y", None, 404, "queue 'NOPE.1.X.Y' is not registered"),
        ("post", "/api/farms/ghost/lease", {"slots": [0]}, 404, "farm 'ghost' is not registered"),
        ("get", "/api/bases/NOPE", None, 404, "base 'NOPE' is not known"),
        ("delete", "/api/windows/999", None, 404, "window 999"),
        ("post", "/api/bases/MULTCOB03/windows", {"weekdays": [1], "start": "08:00", "end": "08:00", "max_workers": 2},
         422, "end equals start"),
        ("post", "/api/bases/MULTCOB03/windows", {"weekdays": [1], "start": "8h", "end": "18:00", "max_workers": 2},
         422, "start"),
        ("post", "/api/bases/MULTCOB03/windows", {"weekdays": [], "start": "08:00", "end": "18:00", "max_workers": 2},
         422, "weekdays"),
        ("patch", "/api/bases/MULTCOB03", {"max_workers": -1}, 422, "max_workers"),
        ("patch", "/api/bases/MULTCOB03", {"max_workers": 2, "min_workers": 3}, 422, "min_workers 3 is above"),
        ("post", f"/api/queues/{TOPIC}/priority", {"priority": 12}, 422, "priority"),
        ("post", f"/api/queues/{TOPIC}/priority", {}, 422, "exactly one of"),
        ("post", "/api/topics/bad-topic/messages", {"messages": [{"value": "x"}]}, 422, "expected 4 parts"),
        ("post", "/api/farms/register", {"name": "x", "slots": 0}, 422, "slots"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_problem(
    api: httpx.Client, method: str, path: str, body: Any, status: int, words: str
) -> None:
    publish(api, TOPIC, ["1"])

    response = api.request(method, path, json=body)

    assert response.status_code == status, response.text
    assert words in response.text


def test_oversized_bodies_are_refused_before_reading(api: httpx.Client) -> None:
    response = api.post("/api/farms/register", content=b"x" * (2 << 20), headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert "over the limit of 1048576 bytes" in response.json()["detail"]


def test_a_completion_for_an_unknown_task_changes_no_count(api: httpx.Client) -> None:
    publish(api, TOPIC, ["1", "2"])
    before = queue_row(api)

    answer = api.post("/api/tasks/nope/complete", json={"default": "ok"}).json()

    assert answer == {"accepted": False, "ok": 0, "retried": 0, "dead": 0, "ignored": 0}
    assert queue_row(api)["consumed"] == before["consumed"] == 0


def test_status_aggregates_queues_bases_and_farms(api: httpx.Client) -> None:
    publish(api, TOPIC, ["1"])
    register(api)

    status = api.get("/api/status").json()

    assert [q["topic"] for q in status["queues"]] == [TOPIC]
    assert [b["name"] for b in status["bases"]] == ["MULTCOB03"]
    assert [f["id"] for f in status["farms"]] == ["farm-a"]
    assert status["broker_ok"] is True


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.postgres])])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings naming the log and the state: none (the embedded defaults under the test's folder),
    or a tansu broker of the test's own and a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    tansu = request.getfixturevalue("fresh_tansu")
    with fresh_postgres_schema() as database_url:
        yield {"broker_url": tansu.url, "database_url": database_url}


def test_restart_redoes_nothing_finished_and_keeps_leases(tmp_path: Path, backend: dict[str, str]) -> None:
    server = RunningCoordinator(tmp_path, None, **backend).start()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        publish(api, TOPIC, [f"{i:011d}" for i in range(1500)])
        farm_id = register(api, slots=3)
        first, second = lease(api, farm_id, [0, 1, 2])  # an answer stops at 1,000 messages
        [third] = lease(api, farm_id, [2], wait_s=10)  # as a farm asks: on Kafka the read-ahead is read meanwhile
        complete(api, first)
    server.stop()

    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            register(api, slots=3)
            nothing = lease(api, farm_id, [0])
            results = [complete(api, second), complete(api, third), complete(api, second)]
            row = queue_row(api)
    finally:
        server.stop()

    assert nothing == []
    assert [(r["accepted"], r["ok"]) for r in results] == [(True, 500), (True, 500), (False, 0)]
    assert row["consumed"] == 1500
    all_acks = acks(server, TOPIC)
    assert len(all_acks) == len({(a["partition"], a["offset"]) for a in all_acks}) == 1500


def test_binding_beyond_loopback_without_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="not a loopback address and no tokens are configured"):
        Settings(host="0.0.0.0")


def test_a_lease_can_carry_the_previous_completions(api: httpx.Client, server: RunningCoordinator) -> None:
    publish(api, "MULTCOB02.1186.COBSINC.LOCALIZACAO", ["1", "2", "3"])
    farm_id = register(api, slots=1)
    [first] = lease(api, farm_id, [0])

    body = {"slots": [0], "wait_s": 0, "completions": [{"task_id": first["task_id"], "default": "ok"}]}
    answer = api.post(f"/api/farms/{farm_id}/lease", json=body).json()

    assert answer["settled"] == [
        {"task_id": first["task_id"], "accepted": True, "ok": 1, "retried": 0, "dead": 0, "ignored": 0}
    ]
    assert answer["tasks"][0]["messages"]["keys"] == ["2"]
    assert len(acks(server, "MULTCOB02.1186.COBSINC.LOCALIZACAO")) == 1
