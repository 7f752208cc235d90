"""Results in the log the store never heard of: taken as settled as memory is loaded, never redone.

A settlement appends its ``.ACK`` (and ``.DLQ``) records before its store transaction commits
(``settlement.py``): the other order could lose an ACK. A coordinator killed between the two, or a
transaction that failed after the append, leaves records in the log for messages the store still
counts as leased, pending or waiting for a retry; running them again would ACK them twice. So as
memory is loaded (a start, or a reload after a failed write), the end of each queue's ``.ACK``
partitions is read back, and each message an ACK record there names that the store does not count
as finished is finished now, in one store transaction, before anything is read or leased: its
ledger moves, its retry row goes, and a task all of whose messages are finished so is done. Their outcomes go
to the settlement hook with the next settlement's (history, metrics).

Only the end needs reading. Nothing appends results between a settlement that did not commit and the
next load: a change that fails makes memory stale, and stale memory is reloaded before any other
change; so the records of committed settlements, whose messages are all finished, lie before those
of the one that did not. Reading back stops at the first record of a message the store counts as
finished.

A dead message's ``.DLQ`` record is in the log before its ``.ACK`` record is appended
(``Settlement``): one finished here from its ACK is never missing from the DLQ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from xtreaming.broker import Broker
from xtreaming.broker.reading import records_between
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import LedgerRecord, RetryRecord, TaskRecord
from xtreaming.coordinator.store import Store
from xtreaming.topics import TopicName
from xtreaming.wire.acks import AckedMessage, parse_ack

log = logging.getLogger("xtreaming.coordinator")

#: Records read back at first from the end of an ACK partition; twice as many each time more are needed.
FIRST_READ: Final = 16
#: The most read back at once.
LARGEST_READ: Final = 4096


@dataclass(frozen=True, slots=True)
class Loaded:
    """What memory is loaded from: every partition's ledger, the tasks in flight and the retries waiting."""

    ledgers: Mapping[tuple[str, int], LedgerState]
    tasks: Sequence[TaskRecord]
    retries: Sequence[RetryRecord]
    #: The outcomes settled from the log, for the settlement hook (``outcomes.py``).
    outcomes: Sequence[Outcome] = ()


def recover_results(store: Store, broker: Broker, topics: Iterable[str], loaded: Loaded) -> Loaded:
    """``loaded`` with every message finished that an ACK record at the end of its queue's ``.ACK`` topic names
    and the store does not count as finished, stored first (see the module docstring), and their outcomes.

    The tasks and retries are also rid of every message the ledgers count as finished, whatever finished it: the
    store keeps a lease as it was made, and one of its messages may have been settled from the log (at an
    earlier load) or by a late report of an earlier lease of it; a lease holding it would hold its key for good."""
    acked = _acked_at_the_end(broker, list(topics), loaded.ledgers)
    offsets: dict[tuple[str, int], set[int]] = {}
    for record in acked:
        offsets.setdefault((record.topic, record.partition), set()).add(record.offset)
    ledgers = dict(loaded.ledgers)
    changed: list[LedgerRecord] = []
    for (topic, partition), finishing in sorted(offsets.items()):
        state = ledgers.get((topic, partition), LedgerState(0)).finishing(finishing)
        ledgers[(topic, partition)] = state
        changed.append(LedgerRecord(topic, partition, state))

    def finished(topic: str, partition: int, offset: int) -> bool:
        state = ledgers.get((topic, partition))
        return state is not None and state.is_finished(offset)

    tasks: list[TaskRecord] = []
    done: list[str] = []
    for task in loaded.tasks:
        left = tuple(m for m in task.messages if not finished(task.topic, m.partition, m.offset))
        if not left:
            done.append(task.id)
        else:
            tasks.append(task if len(left) == len(task.messages) else replace(task, messages=left))
    retries = [r for r in loaded.retries if not finished(r.topic, r.partition, r.offset)]
    cleared = sorted(
        (r.topic, r.partition, r.offset) for r in loaded.retries if finished(r.topic, r.partition, r.offset)
    )
    if not (changed or done or cleared):
        return Loaded(ledgers, tasks, retries)
    with store.transaction():
        store.settle(finished_tasks=done, ledgers=changed, cleared_retries=cleared)
    if acked:
        log.warning(
            "%d message(s) whose results were in the log but not in the state store (a write cut short) are "
            "finished now, not run again; %d task(s) with them ended",
            len(acked),
            len(done),
        )
    leased = {task.id: task.leased_at for task in loaded.tasks}
    return Loaded(ledgers, tasks, retries, [record.outcome(leased) for record in acked])


@dataclass(frozen=True, slots=True)
class _Acked:
    """An ACK record read back: its message and outcome as ``parse_ack`` reads them, the record's key, and the
    fields only the settlement hook wants (the record as ``results.ack_records`` writes it)."""

    read: AckedMessage
    key: bytes | None
    fields: Mapping[str, Any]

    @property
    def topic(self) -> str:
        return self.read.topic

    @property
    def partition(self) -> int:
        return self.read.partition

    @property
    def offset(self) -> int:
        return self.read.offset

    def outcome(self, leased: Mapping[str, datetime]) -> Outcome:
        """The settlement hook's view of it; its duration from its task's lease, when the store has the task."""
        f, said = self.fields, self.read.outcome
        task_id, farm, slot = f.get("task_id"), f.get("farm"), f.get("worker")
        started = leased.get(task_id) if isinstance(task_id, str) else None
        try:
            spent_s = (datetime.fromisoformat(f["finished_at"]) - started).total_seconds() if started else 0.0
        except (KeyError, TypeError, ValueError):
            spent_s = 0.0
        return Outcome(
            Result(said.status), self.topic, self.partition, self.offset, self.key, said.attempts,
            farm if isinstance(farm, str) else "", slot if isinstance(slot, int) else -1,
            task_id if isinstance(task_id, str) else "", spent_s, said.detail,
        )  # fmt: skip


def _acked_at_the_end(
    broker: Broker, topics: list[str], ledgers: Mapping[tuple[str, int], LedgerState]
) -> list[_Acked]:
    """The ACK records at the end of each queue's ``.ACK`` topic of messages ``ledgers`` do not count as finished."""
    ack_of = {TopicName.parse(topic).ack: topic for topic in topics}
    existing = set(broker.list_topics())
    ends = broker.end_offsets_of([ack for ack in ack_of if ack in existing])
    acked: list[_Acked] = []
    for ack, partitions in ends.items():
        for partition, end in partitions.items():
            acked += _unsettled_at_the_end(broker, ack, partition, end, ack_of[ack], ledgers)
    return acked


def _unsettled_at_the_end(
    broker: Broker, ack: str, partition: int, end: int, topic: str, ledgers: Mapping[tuple[str, int], LedgerState]
) -> list[_Acked]:
    """Read ``ack``'s ``partition`` back from ``end``: its records up to the first of a message ``ledgers`` count as
    finished. Records that are not ``topic``'s ACKs (another writer's) are passed."""
    found: list[_Acked] = []
    cursor, size = end, FIRST_READ
    while cursor > 0:
        start = max(0, cursor - size)
        for message in reversed(list(records_between(broker, ack, partition, start, cursor))):
            acked = parse_ack(message.value)
            if acked is None or acked.topic != topic:
                continue
            state = ledgers.get((topic, acked.partition))
            if state is not None and state.is_finished(acked.offset):
                return found
            fields = json.loads(message.value)  # parse_ack took it: a JSON object
            found.append(_Acked(acked, message.key, fields))
        cursor, size = start, min(size * 2, LARGEST_READ)
    return found
