"""End to end: a coordinator, two farm processes and the sample worker over real HTTP."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.farm.site import Site, once_each
from tests.waiting import wait_until
from xtreaming.coordinator.service import Assignment

QUEUES = {
    "MULTCOB02.1186.IMPORTACAO.MAILING_PORTO_NOVO": 8000,
    "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU": 6000,
    "MULTCOB03.1190.IMPORTACAO.CARGA_TOTAL": 6000,
}
SAMPLE_WORKER = ["{python}", "-m", "xtreaming.demo.worker", "--base", "{base}", "--input", "{input}"]


class BaseSampler:
    """Samples the coordinator's own in-use figure of a base, as fast as it answers, in a thread."""

    def __init__(self, site: Site, base: str) -> None:
        self.site, self.base = site, base
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            row = self.site.call("GET", f"/api/bases/{self.base}")
            self.samples.append((row["in_use"], row["limit"]))
            self._stop.wait(0.005)

    def stop(self) -> list[tuple[int, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def test_20k_messages_on_three_queues_and_two_farms_are_acked_once_within_the_base_limit(
    site: Site, tmp_path: Path
) -> None:
    command = [*SAMPLE_WORKER, "--output", "{output}", "--db-dir", str(tmp_path / "bases")]
    site.profile(".*", command=command, batch_size=500, backoff_s=0, max_attempts=10)
    for number, (topic, count) in enumerate(QUEUES.items()):
        site.publish(topic, count, first=number * 10_000)  # distinct clients: one row each in the base
    site.call("PATCH", "/api/bases/MULTCOB03", {"max_workers": 2})
    sampler = BaseSampler(site, "MULTCOB03")
    env = {"XTREAMING_DEMO_FAIL_RATE": "0.02"}
    site.farm("farm-poa", slots=2, labels={"site": "POA"}, **env)
    site.farm("farm-sao", slots=2, labels={"site": "SAO"}, **env)

    for topic, count in QUEUES.items():
        site.wait_acked(topic, count, timeout_s=60)
    samples = sampler.stop()

    acks = [a for topic in QUEUES for a in site.acks(topic)]
    assert len(acks) == 20_000
    assert once_each(acks)
    assert Counter(a["status"] for a in acks) == {"ok": 20_000}
    assert max(a["attempts"] for a in acks) > 1  # the worker's failures were retried
    assert {a["farm"] for a in acks} == {"farm-poa", "farm-sao"}
    assert len(samples) > 50
    assert max(in_use for in_use, _ in samples) == 2
    assert all(in_use <= limit == 2 for in_use, limit in samples)
    for base, count in (("MULTCOB02", 8000), ("MULTCOB03", 12_000)):
        with sqlite3.connect(tmp_path / "bases" / f"{base}.db") as db:
            assert db.execute("SELECT count(*) FROM clientes").fetchone() == (count,)


def answered_long_polls(site: Site, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, how many tasks each long-poll of a farm was answered with (the coordinator's
    ``lease_wait``, which a lease request reaches when there was no task to hand out at once)."""
    coordinator = site.coordinator.app.state.coordinator
    lease_wait = coordinator.lease_wait
    answered: list[int] = []

    def counted(farm_id: str, slots: Sequence[int], timeout_s: float) -> list[Assignment]:
        assignments: list[Assignment] = lease_wait(farm_id, slots, timeout_s)
        answered.append(len(assignments))
        return assignments

    monkeypatch.setattr(coordinator, "lease_wait", counted)
    return answered


def test_pausing_a_queue_stops_new_tasks_within_one_lease_cycle(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = "MULTCOB02.1186.IMPORTACAO.CARGA"
    # Each task takes 0.3 s (simulated work), so that tasks are running when the queue is paused.
    site.profile(".*", command=["{python}", "-c", "import time; time.sleep(0.3)"], batch_size=10, backoff_s=0)
    site.publish(topic, 200)
    site.farm("farm-poa", slots=2)
    wait_until(lambda: site.queue(topic)["consumed"] >= 40, 20, "the first tasks to finish")

    paused = site.call("POST", f"/api/queues/{topic}/pause")
    wait_until(lambda: site.queue(topic)["workers"] == 0, 5, "the running tasks to finish")
    long_polls = answered_long_polls(site, monkeypatch)

    def asked_three_times_while_idle() -> bool:
        assert site.queue(topic)["workers"] == 0, "a task started after the pause"
        return len(long_polls) >= 3

    wait_until(asked_three_times_while_idle, 5, "the farm to ask for work three times (0.5 s lease cycles)")

    assert set(long_polls) == {0}, "a long-poll was answered with a task after the pause"
    row = site.queue(topic)
    assert row["state"] == "paused"
    assert paused["consumed"] <= row["consumed"] <= paused["consumed"] + paused["in_flight"]
    assert row["pending"] > 0
    site.call("POST", f"/api/queues/{topic}/resume")
    acks = site.wait_acked(topic, 200)
    assert len(acks) == 200
    assert once_each(acks)
