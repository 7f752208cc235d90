"""On a log that is not local (``Broker.local`` False: Kafka, where a read is a round trip), the coordinator never
reads holding its lock: a lease that leaves its queue short of a batch hands out what the queue holds, and the
read-ahead is read by ``top_up_wanted`` without the lock, which wakes the farms' long-polls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coordinator.test_service import TOPIC, Site, farm, keys
from xtreaming.broker import Message, Record
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Coordinator

BATCH = 50  # read-ahead: two batches, 100 messages (one partition)


class RemoteLog(SqliteBroker):
    """The embedded log saying it is not local, noting each read made holding the coordinator's lock."""

    local = False

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.coordinator: Coordinator | None = None
        self.reads_under_lock = 0
        self.reads = 0

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        if topic == TOPIC:
            self.reads += 1
            self.reads_under_lock += self.coordinator is not None and self.coordinator.holds_lock()
        return super().read(topic, partition, offset, max_records, max_bytes)


@pytest.fixture
def remote(site: Site, tmp_path: Path) -> Iterator[tuple[RemoteLog, Coordinator]]:
    log = RemoteLog(tmp_path / "remote.db")
    coordinator = Coordinator(site.store, log, CoordinatorOptions(), clock=site.clock)
    log.coordinator = coordinator
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH, command=("worker.exe",)))
    log.create_topic(TOPIC, 1)
    log.append(TOPIC, [Record(key.encode(), b"<cliente/>") for key in keys(500)])
    coordinator.run_once()
    yield log, coordinator
    log.close()


def test_a_lease_leaving_its_queue_short_reads_nothing_and_the_read_ahead_is_read_without_the_lock(
    site: Site, remote: tuple[RemoteLog, Coordinator]
) -> None:
    log, coordinator = remote
    farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 3).id
    read_before = log.reads

    tasks = coordinator.lease(farm_id, [0, 1, 2])  # two batches were ready: the third slot gets nothing yet
    buffered_after_lease = coordinator.queue(TOPIC).buffered[0]
    reads_by_the_lease = log.reads - read_before
    made_pending = coordinator.top_up_wanted(timeout_s=5)
    [third] = coordinator.lease(farm_id, [2])

    assert ([len(t.messages) for t in tasks], buffered_after_lease, reads_by_the_lease) == ([BATCH, BATCH], 0, 0)
    assert (made_pending, len(third.messages)) == (2 * BATCH, BATCH)
    assert log.reads_under_lock == 0


def test_a_long_poll_of_a_short_queue_is_woken_by_the_read_ahead(
    site: Site, remote: tuple[RemoteLog, Coordinator]
) -> None:
    log, coordinator = remote
    farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 3).id
    coordinator.lease(farm_id, [0, 1])
    waited: list[int] = []
    poll = threading.Thread(
        target=lambda: waited.extend(len(t.messages) for t in coordinator.lease_wait(farm_id, [2], 30))
    )
    poll.start()

    coordinator.top_up_wanted(timeout_s=5)
    poll.join(timeout=10)

    assert (poll.is_alive(), waited) == (False, [BATCH])
    assert log.reads_under_lock == 0


def test_a_local_log_tops_a_short_queue_up_as_the_lease_is_made(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH, command=("worker.exe",)))
    site.publish(TOPIC, keys(500))

    tasks = site.coordinator.lease(farm(site, slots=3), [0, 1, 2])

    assert [len(t.messages) for t in tasks] == [BATCH] * 3
