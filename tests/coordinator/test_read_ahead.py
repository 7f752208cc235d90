"""How much a queue reads ahead (``QueueRuntime.read_ahead``): two batches while it has two tasks running or fewer, a
batch for each task running beyond that, up to ``MAX_READ_AHEAD_BATCHES``; never less than ``MIN_READ_AHEAD`` a
partition."""

from __future__ import annotations

import pytest

from tests.coordinator.test_idle_pass import append
from tests.coordinator.test_service import TOPIC, Site, farm
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.runtime import MAX_READ_AHEAD_BATCHES, MIN_READ_AHEAD


def queue_of(site: Site, batch_size: int, messages: int, max_workers: int) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=batch_size, command=("worker.exe",)))
    append(site, TOPIC, 0, messages, partitions=2)
    site.coordinator.run_once()
    site.coordinator.controls.update_base("MULTCOB03", "test", max_workers=max_workers)


@pytest.mark.parametrize(("slots", "batches"), [(1, 2), (2, 2), (5, 5), (8, 8), (10, MAX_READ_AHEAD_BATCHES)])
def test_a_queue_reads_ahead_a_batch_for_each_task_running_within_bounds(site: Site, slots: int, batches: int) -> None:
    queue_of(site, 100, 3000, slots)

    tasks = site.coordinator.lease(farm(site, slots=slots), list(range(slots)))

    assert len(tasks) == slots
    assert site.coordinator.queue(TOPIC).read_ahead == batches * 100 // 2


def test_a_queue_of_small_batches_reads_ahead_its_floor(site: Site) -> None:
    queue_of(site, 1, 500, 8)

    site.coordinator.lease(farm(site, slots=8), list(range(8)))

    queue = site.coordinator.queue(TOPIC)
    assert queue.read_ahead == MIN_READ_AHEAD
    assert sum(queue.buffered.values()) == 2 * MIN_READ_AHEAD - 8
