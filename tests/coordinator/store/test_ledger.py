"""Settling in the state store, on SQLite and PostgreSQL: finished tasks, ledgers and retries land together."""

from __future__ import annotations

import pytest

from tests.coordinator.store.builders import TOPIC, retry, task
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.records import LedgerRecord
from xtreaming.coordinator.store import Store
from xtreaming.errors import InvalidRecord


def test_settling_lands_every_part_together(store: Store) -> None:
    store.add_task(task("task-1"))
    store.add_task(task("task-2", range(3, 5)))
    store.settle(retries=[retry(1), retry(2)])
    ledger = LedgerRecord(TOPIC, 0, LedgerState(1, ((3, 5), (7, 8))))

    store.settle(
        finished_tasks=["task-1", "task-unknown"],
        ledgers=[ledger],
        retries=[retry(4, attempts=2)],
        cleared_retries=[(TOPIC, 0, 1), (TOPIC, 0, 99)],
    )

    assert store.active_tasks() == [task("task-2", range(3, 5))]
    assert store.load_ledgers() == [ledger]
    assert store.load_retries() == [retry(2), retry(4, attempts=2)]


def test_settling_replaces_ledgers_and_retries_of_the_same_place(store: Store) -> None:
    other = LedgerRecord("MULTCOB02.1.IMPORTACAO.CARGA", 2, LedgerState(0))
    store.settle(ledgers=[LedgerRecord(TOPIC, 0, LedgerState(1, ((3, 5),))), other], retries=[retry(1)])

    store.settle(ledgers=[LedgerRecord(TOPIC, 0, LedgerState(6))], retries=[retry(1, attempts=2)])

    assert store.load_ledgers() == [other, LedgerRecord(TOPIC, 0, LedgerState(6))]
    assert store.load_retries() == [retry(1, attempts=2)]


def test_a_refused_row_rolls_the_whole_settle_back(store: Store) -> None:
    store.add_task(task("task-1"))
    ledger = LedgerRecord(TOPIC, 0, LedgerState(0, ((1, 2),)))
    store.settle(ledgers=[ledger], retries=[retry(1)])

    with pytest.raises(InvalidRecord, match="state store refused the write"):
        store.settle(
            finished_tasks=["task-1"],
            ledgers=[LedgerRecord(TOPIC, 0, LedgerState(3))],
            retries=[retry(2), retry(-1)],  # a negative offset breaks the table's CHECK constraint
            cleared_retries=[(TOPIC, 0, 1)],
        )

    assert store.active_tasks() == [task("task-1")]
    assert store.load_ledgers() == [ledger]
    assert store.load_retries() == [retry(1)]


def test_a_transaction_lands_a_settle_and_the_next_leases_together(store: Store) -> None:
    store.add_task(task("task-1"))

    def settle_and_lease() -> None:
        with store.transaction():
            store.settle(finished_tasks=["task-1"], ledgers=[LedgerRecord(TOPIC, 0, LedgerState(3))])
            store.add_tasks([task("task-2", range(3, 5)), task("task-2", range(5, 6))])  # the id twice: refused

    with pytest.raises(InvalidRecord, match="state store refused the write"):
        settle_and_lease()

    assert store.active_tasks() == [task("task-1")]
    assert store.load_ledgers() == []
