"""Results in the log the store never heard of: taken as settled as memory is loaded, never redone.

A settlement appends its ``.ACK`` (and ``.DLQ``) records before its store transaction commits
(``settlement.py``): the other order could lose an ACK. A coordinator killed between the two, or a
transaction that failed after the append, leaves records in the log for messages the store still
counts as leased, pending or waiting for a retry; running them again would ACK them twice. So as
memory is loaded (a start, or a reload after a failed write), the end of each queue's ``.ACK``
partitions is read back, and each message an ACK record there names that the store does not count
as finished is finished now, in one store transaction, before anything is read or leased: its
ledger moves, its retry row goes, and a task all of whose messages are finished so is done.

Only the end needs reading. Nothing appends results between a settlement that did not commit and the
next load: a change that fails makes memory stale, and stale memory is reloaded before any other
change; so the records of committed settlements, whose messages are all finished, lie before those
of the one that did not. Reading back stops at the first record of a message the store counts as
finished.

A dead message's ``.DLQ`` record is in the log before its ``.ACK`` record is appended
(``Settlement``): one finished here from its ACK is never missing from the DLQ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from xtreaming.broker import Broker, Message
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.records import LedgerRecord, RetryRecord, TaskRecord
from xtreaming.coordinator.store import Store
from xtreaming.topics import TopicName
from xtreaming.wire.acks import parse_ack

log = logging.getLogger("xtreaming.coordinator")

#: Records read back at first from the end of an ACK partition; twice as many each time more are needed.
FIRST_READ: Final = 16
#: The most read back at once.
LARGEST_READ: Final = 4096

Position = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What memory is loaded from: every partition's ledger, the tasks in flight and the retries waiting."""

    ledgers: Mapping[tuple[str, int], LedgerState]
    tasks: Sequence[TaskRecord]
    retries: Sequence[RetryRecord]


def recover_results(store: Store, broker: Broker, topics: Iterable[str], loaded: Loaded) -> Loaded:
    """``loaded`` with every message finished that an ACK record at the end of its queue's ``.ACK`` topic names
    and the store does not count as finished, stored first (see the module docstring)."""
    acked = _acked_at_the_end(broker, list(topics), loaded.ledgers)
    if not acked:
        return loaded
    ledgers = dict(loaded.ledgers)
    changed: list[LedgerRecord] = []
    for (topic, partition), offsets in sorted(acked.items()):
        state = ledgers.get((topic, partition), LedgerState(0)).finishing(offsets)
        ledgers[(topic, partition)] = state
        changed.append(LedgerRecord(topic, partition, state))
    finished = {(topic, partition, offset) for (topic, partition), offsets in acked.items() for offset in offsets}
    tasks: list[TaskRecord] = []
    done: list[str] = []
    for task in loaded.tasks:
        left = tuple(m for m in task.messages if (task.topic, m.partition, m.offset) not in finished)
        if not left:
            done.append(task.id)
        else:
            tasks.append(task if len(left) == len(task.messages) else replace(task, messages=left))
    retries = [r for r in loaded.retries if (r.topic, r.partition, r.offset) not in finished]
    cleared = sorted({(r.topic, r.partition, r.offset) for r in loaded.retries} & finished)
    with store.transaction():
        store.settle(finished_tasks=done, ledgers=changed, cleared_retries=cleared)
    log.warning(
        "%d message(s) whose results were in the log but not in the state store (a write cut short) are "
        "finished now, not run again; %d task(s) with them ended",
        len(finished),
        len(done),
    )
    return Loaded(ledgers, tasks, retries)


def _acked_at_the_end(
    broker: Broker, topics: list[str], ledgers: Mapping[tuple[str, int], LedgerState]
) -> dict[tuple[str, int], set[int]]:
    """The offsets, by queue topic and partition, of the messages the end of their ``.ACK`` topic names and
    ``ledgers`` do not count as finished."""
    ack_of = {TopicName.parse(topic).ack: topic for topic in topics}
    existing = set(broker.list_topics())
    ends = broker.end_offsets_of([ack for ack in ack_of if ack in existing])
    acked: dict[tuple[str, int], set[int]] = {}
    for ack, partitions in ends.items():
        topic = ack_of[ack]
        for partition, end in partitions.items():
            for where in _unsettled_at_the_end(broker, ack, partition, end, topic, ledgers):
                acked.setdefault(where[:2], set()).add(where[2])
    return acked


def _unsettled_at_the_end(
    broker: Broker, ack: str, partition: int, end: int, topic: str, ledgers: Mapping[tuple[str, int], LedgerState]
) -> list[Position]:
    """Read ``ack``'s ``partition`` back from ``end``: the positions its records name, up to the first record of
    a message ``ledgers`` count as finished. Records that are not ``topic``'s ACKs (another writer's) are passed."""
    found: list[Position] = []
    cursor, size = end, FIRST_READ
    while cursor > 0:
        start = max(0, cursor - size)
        for message in reversed(_read_between(broker, ack, partition, start, cursor)):
            acked = parse_ack(message.value)
            if acked is None or acked.topic != topic:
                continue
            state = ledgers.get((topic, acked.partition))
            if state is not None and state.is_finished(acked.offset):
                return found
            found.append((topic, acked.partition, acked.offset))
        cursor, size = start, min(size * 2, LARGEST_READ)
    return found


def _read_between(broker: Broker, topic: str, partition: int, start: int, end: int) -> list[Message]:
    """The records of ``topic``'s ``partition`` at offsets ``[start, end)``, in order."""
    records: list[Message] = []
    offset = start
    while offset < end:
        read = broker.read(topic, partition, offset, max_records=end - offset)
        read = [m for m in read if m.offset < end]
        if not read:
            break
        records += read
        offset = read[-1].offset + 1
    return records
