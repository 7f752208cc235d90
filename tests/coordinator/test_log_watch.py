"""The urgent queues' watch: what a ``Producer`` appends straight to the embedded log for an urgent queue is read
and leased without a background pass or an API call; other queues wait for the pass; polling stays cheap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.coordinator.test_service import Site
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.coordinator.api.background import BackgroundLoop
from xtreaming.coordinator.log_watch import MAX_CPU_SHARE, WATCH_INTERVAL_S, LogWatch
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Coordinator
from xtreaming.producer import Producer

URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
BULK = "MULTCOB03.1186.IMPORTACAO.CARGA"
HANDLER = "xtreaming.demo.worker:noop"
#: The longest a farm's long-poll waits here: a lease must come well before it ends.
LONG_POLL_S = 10.0


@pytest.fixture
def coordinator(site: Site) -> Coordinator:
    """The site's coordinator with an urgent queue (priority 9) and an import queue (priority 3), both known and
    empty, and a farm of 2 slots (``farm-1``); no background pass runs unless a test calls one."""
    coordinator = site.coordinator
    for pattern, priority in ((r".*\.COBSINC\..*", 9), (r".*\.IMPORTACAO\..*", 3)):
        settings = WorkSettings(priority=priority, batch_size=1, handler=HANDLER)
        coordinator.controls.add_profile(pattern, settings, None, "test")
    for topic in (URGENT, BULK):
        site.broker.create_topic(topic, 1)
    coordinator.run_once()
    coordinator.register_farm("farm-1", {}, 2)
    return coordinator


def publish(site: Site, topic: str, key: str) -> None:
    """What a ``Producer`` does: append straight to the log, telling the coordinator nothing."""
    with Producer(site.broker_url) as producer:
        producer.publish(topic, [(key, f"<sinc cpf='{key}'/>")])


def pending(coordinator: Coordinator, topic: str) -> int:
    return sum(coordinator.queue(topic).buffered.values())


@contextmanager
def watching(coordinator: Coordinator) -> Iterator[LogWatch]:
    """The watch polling on a thread of its own, as the background loop runs it (and nothing else of it)."""
    watch = LogWatch(coordinator.broker, coordinator.urgent_topics, coordinator.refresh)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            watch.run_once()
            stop.wait(watch.next_wait_s)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(5)


def test_a_producers_message_to_an_idle_urgent_queue_wakes_a_farms_long_poll_without_a_pass(
    site: Site, coordinator: Coordinator
) -> None:
    answers: list[tuple[float, list[str]]] = []

    def long_poll() -> None:
        started = time.monotonic()
        tasks = coordinator.lease_wait("farm-1", [0, 1], LONG_POLL_S)
        answers.append((time.monotonic() - started, [m.key.decode() for t in tasks for m in t.messages if m.key]))

    with watching(coordinator):
        farm = threading.Thread(target=long_poll)
        farm.start()
        publish(site, URGENT, "00000000191")
        farm.join(LONG_POLL_S + 5)

    # No pass ran since the message was appended, and nothing called the coordinator but the farm: the watch read
    # it and woke the long-poll, which then answered at once rather than at its end.
    [(waited_s, keys)] = answers
    assert keys == ["00000000191"]
    assert waited_s < LONG_POLL_S / 2


def test_the_watch_reads_an_urgent_queue_once_its_end_moves_and_polls_alone_while_it_stands(
    site: Site, coordinator: Coordinator
) -> None:
    refreshed: list[list[str]] = []

    def refresh(topics: Sequence[str]) -> int:
        refreshed.append(list(topics))
        return coordinator.refresh(topics)

    watch = LogWatch(coordinator.broker, coordinator.urgent_topics, refresh)
    watch.run_once()  # the first poll reads every urgent queue ahead
    publish(site, URGENT, "00000000191")

    assert watch.run_once() == 1
    assert pending(coordinator, URGENT) == 1
    assert watch.run_once() == 0
    assert refreshed == [[URGENT], [URGENT]]  # the third poll found the end where it was: no read


def test_a_queue_below_the_urgent_priority_is_left_to_the_background_pass(site: Site, coordinator: Coordinator) -> None:
    watch = LogWatch(coordinator.broker, coordinator.urgent_topics, coordinator.refresh)
    publish(site, BULK, "00000000191")

    assert watch.run_once() == 0
    assert pending(coordinator, BULK) == 0
    coordinator.run_once()
    assert pending(coordinator, BULK) == 1


def test_a_farms_own_urgent_priority_makes_the_queues_it_reserves_slots_for_urgent(
    coordinator: Coordinator,
) -> None:
    assert coordinator.urgent_topics() == [URGENT]  # the site's urgent priority: 8

    coordinator.register_farm("farm-2", {}, 4, urgent_slots=1, urgent_priority=3)

    assert sorted(coordinator.urgent_topics()) == [URGENT, BULK]


class CostlyEnds(SqliteBroker):
    """The embedded log, each ``end_offsets_of`` burning ``cost_s`` of CPU first."""

    cost_s = 0.002

    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        until = time.thread_time() + self.cost_s
        while time.thread_time() < until:
            pass
        return super().end_offsets_of(topics)


def test_a_costly_poll_puts_the_next_one_off_to_keep_the_watch_under_its_share_of_a_core(
    tmp_path: Path, coordinator: Coordinator
) -> None:
    log = CostlyEnds(tmp_path / "log.db")
    watch = LogWatch(log, coordinator.urgent_topics, coordinator.refresh)

    watch.run_once()

    assert watch.next_wait_s >= CostlyEnds.cost_s / MAX_CPU_SHARE > WATCH_INTERVAL_S
    log.close()


class RemoteEnds(SqliteBroker):
    """The embedded log saying it is not local (as Kafka is not)."""

    local = False


def test_the_background_loop_watches_only_a_log_whose_ends_are_cheap(site: Site, tmp_path: Path) -> None:
    remote = RemoteEnds(tmp_path / "log.db")
    elsewhere = Coordinator(site.store, remote, CoordinatorOptions(), clock=site.clock)

    assert BackgroundLoop(site.coordinator, 1.0).watch is not None
    assert BackgroundLoop(elsewhere, 1.0).watch is None
    remote.close()
