"""A farm token acts only as the farms it is bound to, and a farm's request names only its own slots,
over real HTTP: what another farm's token tries is refused (403) and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token

TOPIC = "MULTCOB03.1189.IMPORTACAO.X"
SECRETS = {"farm-a": "secret-of-farm-a", "farm-b": "secret-of-farm-b", "poa": "secret-of-poa", "admin": "secret-adm"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    tokens = [
        Token(name="farm-a", role=Role.FARM, sha256=hash_token(SECRETS["farm-a"]), farms=["farm-a"]),
        Token(name="farm-b", role=Role.FARM, sha256=hash_token(SECRETS["farm-b"]), farms=["farm-b"]),
        Token(name="poa", role=Role.FARM, sha256=hash_token(SECRETS["poa"]), farms=["poa-*"]),
        Token(name="admin", role=Role.ADMIN, sha256=hash_token(SECRETS["admin"])),
    ]
    running = RunningCoordinator(tmp_path, tokens=tokens).start()
    with as_token(running, "admin") as admin:
        published = admin.post(
            f"/api/topics/{TOPIC}/messages", json={"messages": [{"key": str(k), "value": "x"} for k in range(4)]}
        )
        assert published.status_code == 200, published.text
        changed = admin.patch(f"/api/queues/{TOPIC}/settings", json={"batch_size": 1, "handler": "mod:fn"})
        assert changed.status_code == 200, changed.text
    yield running
    running.stop()


def as_token(server: RunningCoordinator, name: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {SECRETS[name]}"}, timeout=30)


def register(api: httpx.Client, name: str, slots: int = 2, **labels: str) -> httpx.Response:
    return api.post("/api/farms/register", json={"name": name, "labels": labels, "slots": slots})


def lease(api: httpx.Client, farm: str, slots: list[Any], **extra: Any) -> httpx.Response:
    return api.post(f"/api/farms/{farm}/lease", json={"slots": slots, "wait_s": 0, **extra})


def farms(server: RunningCoordinator) -> dict[str, tuple[int, dict[str, str]]]:
    with as_token(server, "admin") as admin:
        return {f["id"]: (f["slots"], f["labels"]) for f in admin.get("/api/farms").json()}


def leased_tasks(server: RunningCoordinator) -> int:
    with as_token(server, "admin") as admin:
        return int(admin.get(f"/api/queues/{TOPIC}").json()["in_flight"])


def test_a_farm_token_cannot_register_another_farm(server: RunningCoordinator) -> None:
    with as_token(server, "farm-a") as a, as_token(server, "farm-b") as b:
        assert register(a, "farm-a", slots=2, site="poa").status_code == 200
        before = farms(server)

        hijack = register(b, "farm-a", slots=1024, site="elsewhere")

    assert hijack.status_code == 403, hijack.text
    assert "may not act as farm 'farm-a'" in hijack.json()["detail"]
    assert farms(server) == before == {"farm-a": (2, {"site": "poa"})}
    with as_token(server, "admin") as admin:
        audited = [(e["actor"], e["action"], e["target"], e["details"]) for e in admin.get("/api/audit").json()]
    assert ("farm-a", "farm.register", "farm-a", {"slots": 2, "labels": {"site": "poa"}, "instance": None}) in audited
    assert not any(e[2] == "farm-a" and e[0] == "farm-b" for e in audited)


def test_a_farm_token_cannot_heartbeat_lease_or_report_as_another_farm(server: RunningCoordinator) -> None:
    with as_token(server, "farm-a") as a, as_token(server, "farm-b") as b:
        register(a, "farm-a")
        register(b, "farm-b")
        [task] = lease(a, "farm-a", [0]).json()["tasks"]
        task_id = task["task_id"]

        refused = [
            b.post("/api/farms/farm-a/heartbeat", json={"slots": []}),
            lease(b, "farm-a", [1]),
            b.post(f"/api/tasks/{task_id}/progress", json={"done": 1, "total": 1}),
            b.post(f"/api/tasks/{task_id}/complete", json={"default": "ok"}),
            lease(b, "farm-b", [0], completions=[{"task_id": task_id, "default": "ok"}]),
        ]
        still_leased = leased_tasks(server)
        done = a.post(f"/api/tasks/{task_id}/complete", json={"default": "ok"})

    assert [r.status_code for r in refused] == [403] * 5, [r.text for r in refused]
    assert still_leased == 1  # neither the completion nor the lease request of farm-b touched farm-a's task
    assert done.json()["ok"] == 1


def test_a_token_bound_by_pattern_acts_as_the_farms_it_matches(server: RunningCoordinator) -> None:
    with as_token(server, "poa") as poa:
        assert register(poa, "poa-1").status_code == 200
        assert register(poa, "poa-2").status_code == 200
        assert register(poa, "rio-1").status_code == 403

    assert set(farms(server)) == {"poa-1", "poa-2"}


@pytest.mark.parametrize("slots", [[0, 0], [1, 0, 1], [2], [-1], [10**12]])
def test_a_lease_names_each_of_the_farms_slots_once(server: RunningCoordinator, slots: list[int]) -> None:
    with as_token(server, "farm-a") as a:
        register(a, "farm-a", slots=2)

        answer = lease(a, "farm-a", slots)

    assert answer.status_code == 422, answer.text
    assert leased_tasks(server) == 0


@pytest.mark.parametrize("indexes", [[0, 0], [2], [-1]])
def test_a_heartbeat_names_each_of_the_farms_slots_once(server: RunningCoordinator, indexes: list[int]) -> None:
    with as_token(server, "farm-a") as a:
        register(a, "farm-a", slots=2)
        slots = [{"index": i, "state": "idle"} for i in indexes]

        answer = a.post("/api/farms/farm-a/heartbeat", json={"slots": slots})

    assert answer.status_code == 422, answer.text


def test_a_lease_for_a_farm_never_registered_is_refused_at_once(server: RunningCoordinator) -> None:
    with as_token(server, "admin") as admin:
        answer = admin.post("/api/farms/nobody/lease", json={"slots": [0], "wait_s": 30}, timeout=10)

    assert answer.status_code == 404, answer.text
