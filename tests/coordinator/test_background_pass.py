"""The background pass asks the broker without the coordinator's lock: a frozen broker (tansu stopped with
SIGSTOP) stalls the pass, not the screen's reads nor the operators' changes, and once the broker is back
the pass reads on from where it stood, every message once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import Broker, Record, open_broker
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.service import Coordinator
from xtreaming.coordinator.store import Store
from xtreaming.errors import BrokerUnavailable

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
#: How long one broker call waits (the URL's ``timeout_s``): the first call to meet the frozen broker waits that long.
BROKER_TIMEOUT_S = 2.0
#: Calls that take the coordinator's lock answer this fast while the pass waits on the broker (far below its
#: timeout: generous for a loaded two-core machine).
PROMPT_S = 0.5


class StalledPass(threading.Thread):
    """One ``run_once`` on a thread of its own: how long it took and what it raised."""

    def __init__(self, coordinator: Coordinator) -> None:
        super().__init__(daemon=True)
        self.coordinator = coordinator
        self.error: Exception | None = None
        self.took_s = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.coordinator.run_once()
        except Exception as exc:  # kept for the test to look at
            self.error = exc
        self.took_s = time.monotonic() - started


@pytest.fixture
def broker(fresh_tansu: Tansu) -> Iterator[Broker]:
    log = open_broker(f"{fresh_tansu.url}?timeout_s={BROKER_TIMEOUT_S:g}")
    yield log
    log.close()


@pytest.fixture
def store() -> Iterator[Store]:
    with fresh_postgres_schema() as url, Store.open(url) as store:
        yield store


def append(broker: Broker, first: int, count: int) -> None:
    broker.append(TOPIC, [Record(f"{10_000_000_000 + i}".encode(), b"<cliente/>") for i in range(first, first + count)])


def passes(coordinator: Coordinator) -> bool:
    coordinator.run_once()
    return True


@pytest.mark.parametrize("discovery_interval_s", [0.0, 3600.0], ids=["listing-topics", "reading-ends"])
def test_a_pass_stalled_on_a_frozen_broker_holds_no_lock_and_reads_on_once_it_is_back(
    fresh_tansu: Tansu, broker: Broker, store: Store, discovery_interval_s: float
) -> None:
    coordinator = Coordinator(store, broker, CoordinatorOptions(discovery_interval_s=discovery_interval_s))
    broker.create_topic(TOPIC, 2)
    append(broker, 0, 100)
    coordinator.run_once()
    append(broker, 100, 100)  # for the pass that meets the frozen broker to read

    fresh_tansu.pause()
    try:
        stalled = StalledPass(coordinator)
        stalled.start()
        slowest_s, calls = 0.0, 0
        while stalled.is_alive():
            started = time.monotonic()
            coordinator.figures()  # the screen's figures
            coordinator.explain(TOPIC)
            coordinator.controls.update_queue(TOPIC, "ana", priority=calls % 10)  # stored and applied under the lock
            slowest_s = max(slowest_s, time.monotonic() - started)
            calls += 1
            stalled.join(0.02)
    finally:
        fresh_tansu.resume()

    assert isinstance(stalled.error, BrokerUnavailable), stalled.error
    assert stalled.took_s >= BROKER_TIMEOUT_S * 0.9, f"the pass waited only {stalled.took_s:.2f} s on the broker"
    assert slowest_s < PROMPT_S, f"a call waited {slowest_s:.2f} s for the pass stalled on the broker"
    assert calls >= 10

    wait_until(lambda: passes(coordinator), 30, "a pass to meet the broker again", ignoring=(BrokerUnavailable,))
    pending = coordinator.queue(TOPIC).pending.values()
    read = sorted((m.partition, m.offset) for m in pending)
    assert len(read) == 200, "a message was read twice or not at all"
    assert read == sorted((p, o) for p, ends in broker.end_offsets(TOPIC).items() for o in range(ends))
