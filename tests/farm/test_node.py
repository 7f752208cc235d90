"""The farm agent as a real process against a real coordinator: heartbeats, stop signals, outages."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.farm.builders import worker
from tests.farm.site import Site, once_each
from tests.waiting import wait_until
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token
from xtreaming.coordinator.records import SlotRecord
from xtreaming.coordinator.service import Reconciled
from xtreaming.farm.config import FarmConfig
from xtreaming.farm.node import FarmNode

TOPIC = "MULTCOB02.1186.IMPORTACAO.CARGA"


def registered_node(site: Site, tmp_path: Path, messages: int, slots: int = 1, **profile: Any) -> FarmNode:
    """A farm agent in this process, registered with ``site``, whose queue (set as ``profile`` says) holds ``messages``
    in one partition; its threads are the test's to run."""
    site.profile(".*", **profile)
    site.publish(TOPIC, messages, partitions=1)
    node = FarmNode(FarmConfig(site.url, "farm-x", slots=slots, work_dir=tmp_path / "farm-x"))
    assert node.links.register(node.stopping)
    return node


def test_heartbeats_show_each_slot_with_its_task_pid_progress_and_memory(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(heartbeat_interval_s=0.2)
    coordinator = site.coordinator.app.state.coordinator
    heard: list[list[SlotRecord]] = []  # each heartbeat's slots, as the coordinator received them
    receive = coordinator.heartbeat

    def heartbeat(farm_id: str, slots: Sequence[SlotRecord], **more: Any) -> Reconciled:
        heard.append(list(slots))
        reconciled: Reconciled = receive(farm_id, slots, **more)
        return reconciled

    monkeypatch.setattr(coordinator, "heartbeat", heartbeat)
    site.profile(".*", command=worker("sleep", "5"), batch_size=4)
    site.publish(TOPIC, 4)
    site.farm("farm-a", slots=2)

    def running(slots: list[SlotRecord]) -> list[SlotRecord]:
        return [s for s in slots if s.state == "running" and s.done == 1 and s.rss_bytes]

    beat = wait_until(
        lambda: next((slots for slots in reversed(heard) if running(slots)), None),
        10,
        "a heartbeat with a running slot and its progress",
    )

    [slot] = running(beat)
    assert slot.total == 4
    assert slot.pid
    assert slot.pid > 0
    assert slot.task_id in {t.id for t in coordinator.store.active_tasks()}
    assert [s.state for s in beat] == ["running", "idle"]


def running_tasks(work_dir: Path) -> int:
    """Tasks the farm has started and not finished: their directories (gone when all is ok)."""
    tasks = work_dir / "tasks"
    return len(list(tasks.iterdir())) if tasks.exists() else 0


def test_sigterm_lets_running_tasks_finish_and_takes_no_new_ones(site: Site, tmp_path: Path) -> None:
    site.profile(".*", command=worker("sleep", "1"), batch_size=5)
    site.publish(TOPIC, 50, partitions=1)
    farm = site.farm("farm-a", slots=2)
    wait_until(lambda: running_tasks(tmp_path / "farm-a") == 2, 10, "both slots busy")

    farm.signal(signal.SIGTERM)

    assert farm.wait(10) == 0
    row = site.queue(TOPIC)
    assert (row["consumed"], row["in_flight"], row["workers"]) == (10, 0, 0)
    assert all(a["status"] == "ok" and a["attempts"] == 1 for a in site.acks(TOPIC))
    assert "stopping: no new tasks; 2 running will finish" in farm.output()


def test_a_second_signal_kills_running_tasks_and_reports_them_for_retry(site: Site, tmp_path: Path) -> None:
    site.profile(".*", command=worker("sleep", "60"), batch_size=5)
    site.publish(TOPIC, 10, partitions=1)
    farm = site.farm("farm-a", slots=2)
    wait_until(lambda: running_tasks(tmp_path / "farm-a") == 2, 10, "both slots busy")

    farm.signal(signal.SIGTERM)
    wait_until(lambda: "stopping: no new tasks" in farm.output(), 5, "the farm to start stopping")
    farm.signal(signal.SIGTERM)

    assert farm.wait(10) == 0
    row = site.queue(TOPIC)
    assert (row["consumed"], row["in_flight"], row["failures"]) == (0, 0, 10)
    assert "killing 2 running task(s)" in farm.output()


def test_a_farm_rides_out_a_coordinator_restart(site: Site, tmp_path: Path) -> None:
    site.profile(".*", command=worker("sleep", "0.5"), batch_size=5)
    site.publish(TOPIC, 20, partitions=1)
    farm = site.farm("farm-a", slots=2)
    wait_until(lambda: running_tasks(tmp_path / "farm-a") == 2, 10, "both slots busy")

    site.coordinator.stop()
    wait_until(lambda: running_tasks(tmp_path / "farm-a") == 0, 10, "the tasks to finish while the coordinator is down")
    site.coordinator.start()

    acks = site.wait_acked(TOPIC, 20)
    assert len(acks) == 20
    assert once_each(acks)
    assert all(a["status"] == "ok" for a in acks)
    assert farm.process.poll() is None
    assert "coordinator unreachable" in farm.output()
    assert "coordinator reachable again" in farm.output()


def test_handler_mode_imports_in_long_lived_processes(site: Site, tmp_path: Path) -> None:
    site.profile(".*", handler="xtreaming.demo.worker:handle", batch_size=200)
    site.publish(TOPIC, 2000)
    site.farm("farm-a", slots=2, XTREAMING_DEMO_DB_DIR=str(tmp_path / "bases"))

    acks = site.wait_acked(TOPIC, 2000)

    assert len(acks) == 2000
    assert once_each(acks)
    with sqlite3.connect(tmp_path / "bases" / "MULTCOB02.db") as db:
        assert db.execute("SELECT count(*) FROM clientes").fetchone() == (2000,)


def test_a_finished_slot_reports_and_leases_its_next_task_in_one_round_trip(site: Site, tmp_path: Path) -> None:
    node = registered_node(site, tmp_path, 10, command=worker("ok"), batch_size=5)
    try:
        node.run_once(wait_s=0)  # the dispatcher leases the first task; the slot carries on alone

        wait_until(lambda: site.queue(TOPIC)["state"] == "done", 10, "every message finished")
        wait_until(lambda: node.slots[0].idle, 10, "the slot to go idle")
        assert len(node.outbox) == 0
        assert [(a["status"], a["farm"]) for a in site.acks(TOPIC)] == [("ok", "farm-x")] * 10
        assert len({a["task_id"] for a in site.acks(TOPIC)}) == 2
    finally:
        node.finish()


def test_handler_tasks_report_and_lease_their_next_without_the_dispatcher(site: Site, tmp_path: Path) -> None:
    node = registered_node(site, tmp_path, 20, handler="tests.farm.handlers:echo", batch_size=5)
    try:
        node.run_once(wait_s=0)  # the dispatcher leases the first task; from then on the slot's tasks carry on alone

        wait_until(lambda: site.queue(TOPIC)["state"] == "done", 10, "every message finished")
        assert [(a["status"], a["farm"]) for a in site.acks(TOPIC)] == [("ok", "farm-x")] * 20
        assert len({a["task_id"] for a in site.acks(TOPIC)}) == 4
    finally:
        node.stop()
        node.finish()


def test_a_handler_task_reports_while_the_dispatcher_long_polls_for_an_idle_slot(site: Site, tmp_path: Path) -> None:
    node = registered_node(site, tmp_path, 5, slots=2, handler="tests.farm.handlers:naps", batch_size=5)
    dispatcher = threading.Thread(target=lambda: [node.run_once(wait_s=5) for _ in range(2)], daemon=True)
    try:
        dispatcher.start()  # the only task goes to one slot; the dispatcher then long-polls for the other

        wait_until(lambda: site.queue(TOPIC)["state"] == "done", 10, "the task's result to arrive")
        assert [a["status"] for a in site.acks(TOPIC)] == ["ok"] * 5
        assert dispatcher.is_alive()  # still in its long-poll: the result went without it
    finally:
        node.stop()
        dispatcher.join(10)
        node.finish()


def test_a_stopping_farm_leaves_results_to_the_reporter_and_leases_nothing_more(site: Site, tmp_path: Path) -> None:
    node = registered_node(site, tmp_path, 10, command=worker("ok"), batch_size=5)
    node.links.start()
    node.run_once(wait_s=0)
    node.stop()

    wait_until(lambda: node.slots[0].idle, 10, "the task to finish")
    node.finish()

    assert [a["status"] for a in site.acks(TOPIC)] == ["ok"] * 5
    assert site.queue(TOPIC)["consumed"] == 5


def test_a_farm_the_coordinator_refuses_stops_saying_why(make_site: Callable[..., Site]) -> None:
    token = Token(name="farm-poa", role=Role.FARM, sha256=hash_token("the-farm-secret"))
    site = make_site(tokens=[token])
    wrong = site.farm("farm-a", XTREAMING_TOKEN="not-the-secret")
    right = site.farm("farm-b", XTREAMING_TOKEN="the-farm-secret")

    assert wrong.wait(20) == 1
    assert "refused farm: HTTP 401: missing or unknown bearer token" in " ".join(wrong.output().split())
    wait_until(lambda: "farm farm-b registered" in right.output(), 20, "the farm with the right token to register")


def test_a_label_that_is_not_key_value_is_bad_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xtreaming", "farm", "--label", "site"], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert "label 'site' is not key=value, e.g. site=POA" in result.stderr
