"""A farm's detail: each slot with the task leased to it (queue, progress, running time), its last heartbeat's state
and memory, and whether it is kept for urgent work."""

from __future__ import annotations

import httpx
import pytest

from tests.coordinator.test_service import Site, keys
from xtreaming.coordinator.farms import SlotDetail
from xtreaming.coordinator.records import SlotRecord, WorkSettings
from xtreaming.errors import FarmNotFound

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
MIB = 1 << 20


def test_each_slot_shows_its_task_progress_memory_and_running_time(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=50))
    site.publish(TOPIC, keys(60))
    farm_id = site.coordinator.register_farm("farm-a", {"os": "windows"}, 4, urgent_slots=1, urgent_priority=8).id
    first, second = site.coordinator.lease(farm_id, [0, 1])
    site.clock.advance(42)
    site.coordinator.heartbeat(
        farm_id,
        [
            SlotRecord(farm_id, 0, "running", first.task_id, pid=100, done=20, total=50, rss_bytes=300 * MIB),
            SlotRecord(farm_id, 1, "running", second.task_id, pid=101, rss_bytes=80 * MIB),
            SlotRecord(farm_id, 2, "stopping", "a-task-not-ours", pid=102, rss_bytes=10 * MIB),
            SlotRecord(farm_id, 3, "idle"),
        ],
    )

    record, lost, busy, slots = site.coordinator.farm_detail(farm_id)

    assert (record.id, lost, busy) == ("farm-a", False, 2)
    assert slots == [
        SlotDetail(0, "running", False, first.task_id, TOPIC, 20, 50, 300 * MIB, 42.0),
        SlotDetail(1, "running", False, second.task_id, TOPIC, None, None, 80 * MIB, 42.0),
        SlotDetail(2, "stopping", False, rss_bytes=10 * MIB),
        SlotDetail(3, "idle", True),
    ]


def test_a_slot_leased_before_any_heartbeat_shows_its_task(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=50))
    site.publish(TOPIC, keys(10))
    farm_id = site.coordinator.register_farm("farm-a", {}, 2).id
    [task] = site.coordinator.lease(farm_id, [1])
    site.clock.advance(3)

    *_, slots = site.coordinator.farm_detail(farm_id)

    assert slots == [SlotDetail(0, "idle", False), SlotDetail(1, "running", False, task.task_id, TOPIC, running_s=3.0)]


def test_an_unknown_farm_is_refused(site: Site) -> None:
    with pytest.raises(FarmNotFound):
        site.coordinator.farm_detail("ghost")


def test_the_route_gives_the_farm_row_and_its_slots(api: httpx.Client) -> None:
    api.post("/api/profiles", json={"pattern": ".*", "settings": {"batch_size": 5, "command": ["w", "{input}"]}})
    body = {"messages": [{"key": str(i), "value": "x"} for i in range(5)], "partitions": 1}
    api.post(f"/api/topics/{TOPIC}/messages", json=body).raise_for_status()
    farm_id = api.post("/api/farms/register", json={"name": "farm-a", "slots": 2}).json()["farm_id"]
    [task] = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [0], "wait_s": 0}).json()["tasks"]
    slots = [
        {"index": 0, "state": "running", "task_id": task["task_id"], "done": 2, "total": 5, "rss_bytes": 1024},
        {"index": 1, "state": "idle"},
    ]
    api.post(f"/api/farms/{farm_id}/heartbeat", json={"slots": slots}).raise_for_status()

    detail = api.get(f"/api/farms/{farm_id}").json()

    assert (detail["id"], detail["slots"], detail["busy"], detail["lost"]) == ("farm-a", 2, 1, False)
    running, idle = detail["slots_detail"]
    assert (running["state"], running["task_id"], running["topic"]) == ("running", task["task_id"], TOPIC)
    assert (running["done"], running["total"], running["rss_bytes"], running["urgent"]) == (2, 5, 1024, False)
    assert running["running_s"] >= 0
    assert idle == {
        "index": 1, "state": "idle", "urgent": False, "task_id": None, "topic": None, "done": None, "total": None,
        "rss_bytes": None, "running_s": None,
    }  # fmt: skip
    assert api.get("/api/farms/ghost").status_code == 404
