"""Topics written by other clients' transactions: the commit marker at a partition's end is an offset
no message holds, and must not keep a queue from finishing or the group's offset from reaching the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from confluent_kafka import Producer

from tests.coordinator.test_service import Site, farm, ok
from tests.coordinator.workers import give_workers
from tests.services import Tansu, fresh_postgres_schema

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

TOPIC = "MULTCOB02.1186.IMPORTACAO.CARGA_CRM"


@pytest.fixture
def site(fresh_tansu: Tansu) -> Iterator[Site]:
    with ExitStack() as stack:
        site = Site(fresh_tansu.url, stack.enter_context(fresh_postgres_schema()))
        yield site
        site.store.close()
        site.broker.close()


def produce_in_a_transaction(tansu: Tansu, values: list[bytes]) -> None:
    """As the CRM's producer would: one transaction, committed (it leaves a marker after the records)."""
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{tansu.port}", "transactional.id": "crm-1"})
    producer.init_transactions(10)
    producer.begin_transaction()
    for number, value in enumerate(values):
        producer.produce(TOPIC, key=b"%011d" % number, value=value)
    producer.commit_transaction(10)


def test_a_queue_written_in_a_transaction_finishes_and_commits_past_its_marker(site: Site, fresh_tansu: Tansu) -> None:
    site.broker.create_topic(TOPIC, 1)
    produce_in_a_transaction(fresh_tansu, [b"<cliente/>"] * 3)
    assert site.broker.end_offsets(TOPIC) == {0: 4}  # 3 records and the transaction's marker
    site.coordinator.run_once()
    give_workers(site.coordinator)
    farm_id = farm(site)

    [task] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(task.task_id, ok(task))
    site.coordinator.run_once()
    site.coordinator.commit_offsets()

    assert [m.offset for m in task.messages] == [0, 1, 2]
    [row] = [q for q in site.coordinator.figures()[0] if q.topic == TOPIC]
    assert (row.consumed, row.pending) == (4, 0)
    assert site.broker.committed(site.coordinator.options.group, TOPIC) == {0: 4}
