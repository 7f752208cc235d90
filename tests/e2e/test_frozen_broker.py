"""A frozen broker stalls no answer of the coordinator: tansu stopped with SIGSTOP for seconds while farms
long-poll and report, and meanwhile ``/api/status`` and ``/healthz`` answer at once; after SIGCONT the run
finishes without losing a message. Real processes: tansu, PostgreSQL, ``xtreaming coordinator`` (on a
short broker timeout), two ``xtreaming farm``s."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_kafka import KafkaSite
from tests.farm.builders import worker
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
MESSAGES = 4000
BATCH = 50
SLOTS = 4  # two farms of two
#: How long one broker call waits (the URL's ``timeout_s``): the first call to meet the frozen broker waits
#: that long, and before, a request waiting on it waited as long.
BROKER_TIMEOUT_S = 2
#: How long the broker stays frozen, and how often each endpoint is asked meanwhile.
FROZEN_S = 5.0
SAMPLE_EVERY_S = 0.05
#: The bound asserted on every answer during the freeze: generous for a loaded two-core machine (the
#: p99 is far lower: bench/outage_latency.py measures it), far below the broker's timeout.
SLOWEST_S = 0.5


class Sampler(threading.Thread):
    """Asks ``path`` every ``SAMPLE_EVERY_S`` until stopped: how long each answer took, and the answers."""

    def __init__(self, url: str, path: str) -> None:
        super().__init__(daemon=True, name=f"sampler {path}")
        self.api = httpx.Client(base_url=url, timeout=30)
        self.path = path
        self.stop = threading.Event()
        self.took_s: list[float] = []
        self.answers: list[Any] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = self.api.get(self.path)
            except httpx.HTTPError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                if response.status_code == 200:
                    self.answers.append(response.json())
                else:
                    self.failures.append(f"{response.status_code}: {response.text}")
            self.took_s.append(time.monotonic() - started)
            self.stop.wait(SAMPLE_EVERY_S)
        self.api.close()


@pytest.fixture
def site(tmp_path: Path, fresh_tansu: Tansu) -> Iterator[KafkaSite]:
    with fresh_postgres_schema() as database_url:
        site = KafkaSite(tmp_path, f"{fresh_tansu.url}?timeout_s={BROKER_TIMEOUT_S}", database_url)
        try:
            site.start_coordinator()
            yield site
        finally:
            site.close()


def test_a_frozen_broker_leaves_status_and_health_answering_at_once_and_loses_nothing(
    site: KafkaSite, fresh_tansu: Tansu
) -> None:
    site.call("POST", "/api/profiles", {"pattern": ".*", "settings": {"command": worker("ok"), "batch_size": BATCH}})
    site.call("PATCH", "/api/bases/MULTCOB03", {"max_workers": SLOTS})
    site.publish(TOPIC, MESSAGES)
    site.farm("farm-a", slots=2)
    site.farm("farm-b", slots=2)
    wait_until(lambda: site.consumed(TOPIC) >= 2 * BATCH, 60, "the farms to finish their first tasks")

    samplers = [Sampler(site.url, "/api/status"), Sampler(site.url, "/healthz")]
    fresh_tansu.pause()
    try:
        for sampler in samplers:
            sampler.start()
        time.sleep(FROZEN_S)  # the fault's duration: the broker stays frozen this long, whatever happens
    finally:
        for sampler in samplers:
            sampler.stop.set()
            sampler.join(timeout=60)
        fresh_tansu.resume()
    status = samplers[0]

    shown_down = [answer for answer in status.answers if not answer["broker_ok"]]
    assert shown_down, "the status never showed the broker down: the freeze proved nothing"
    assert "kafka 127.0.0.1" in shown_down[-1]["broker_error"]
    [row] = shown_down[-1]["queues"]
    assert row["consumed"] < MESSAGES, "the run was over before the broker froze"
    for sampler in samplers:
        assert not sampler.failures, f"{sampler.path}: {sampler.failures[:3]}"
        assert len(sampler.took_s) >= FROZEN_S / SAMPLE_EVERY_S / 4, f"{sampler.path}: too few answers"
        slowest = max(sampler.took_s)
        assert slowest < SLOWEST_S, f"{sampler.path} took {slowest:.2f} s while the broker was frozen"

    wait_until(lambda: site.consumed(TOPIC) >= MESSAGES, 90, "every message finished once the broker is back")
    assert all(farm.poll() is None for farm in site.farms), "a farm gave up during the freeze"
    acks = site.acks(TOPIC)
    positions = Counter((a["partition"], a["offset"]) for a in acks)
    assert len(positions) == MESSAGES, "a message was lost"
    assert {a["status"] for a in acks} == {"ok"}
    duplicates = len(acks) - MESSAGES
    assert duplicates <= SLOTS * BATCH, f"{duplicates} messages done twice: more than the tasks in flight"
