"""The background pass skips the partitions read to the log's end, and the scout's queues judged to it: after any
number of passes with nothing new, the next one still reads what was appended, tops up what leases took and
judges new copies of keys."""

from __future__ import annotations

from tests.coordinator.test_service import TOPIC, Site, farm, keys, ok
from xtreaming.broker import Record
from xtreaming.coordinator.records import WorkSettings

IDLE_PASSES = 5


def append(site: Site, topic: str, first: int, count: int, partitions: int = 2) -> None:
    site.broker.create_topic(topic, partitions)
    site.broker.append(topic, [Record(key.encode(), b"<cliente/>") for key in keys(count, first)])


def idle(site: Site) -> None:
    for _ in range(IDLE_PASSES):
        site.coordinator.run_once()


def test_a_pass_after_idle_ones_reads_what_was_appended_to_every_partition(site: Site) -> None:
    append(site, TOPIC, 0, 20)
    site.coordinator.run_once()
    idle(site)
    read_before = dict(site.coordinator.queue(TOPIC).buffered)

    append(site, TOPIC, 20, 20)
    site.coordinator.run_once()

    queue = site.coordinator.queue(TOPIC)
    assert (sum(read_before.values()), sum(queue.buffered.values())) == (20, 40)
    assert site.coordinator.queue_row(TOPIC).pending == 40


def test_the_read_ahead_a_lease_took_is_topped_up_by_the_next_pass_and_by_no_idle_one(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=10, command=("worker.exe",)))
    append(site, TOPIC, 0, 200, partitions=1)
    site.coordinator.run_once()
    idle(site)
    full = site.coordinator.queue(TOPIC).buffered[0]  # the read-ahead: 64 of 200

    tasks = site.coordinator.lease(farm(site, slots=4), [0, 1, 2, 3])  # 40 taken: less than half is left
    taken = site.coordinator.queue(TOPIC).buffered[0]
    site.coordinator.run_once()
    topped_up = site.coordinator.queue(TOPIC).buffered[0]
    idle(site)

    assert (full, len(tasks), taken, topped_up) == (64, 4, 24, 64)
    assert site.coordinator.queue(TOPIC).buffered[0] == 64
    assert site.coordinator.queue(TOPIC).partitions[0].next_read == 104  # 40 leased and 64 ready: no more read


def test_a_copy_appended_after_idle_passes_is_judged_a_duplicate(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=10, command=("worker.exe",), one_per_key=True))
    append(site, TOPIC, 0, 10)
    site.coordinator.run_once()
    idle(site)
    farm_id = farm(site)

    append(site, TOPIC, 3, 1)  # a copy of a pending message's key
    site.coordinator.run_once()
    for task in site.coordinator.lease(farm_id, [0, 1]):
        site.coordinator.complete(task.task_id, ok(task))

    row = site.coordinator.queue_row(TOPIC)
    assert (row.duplicates, row.consumed, row.pending) == (1, 11, 0)
