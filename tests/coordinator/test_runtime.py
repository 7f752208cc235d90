"""A queue's runtime hands the scheduler its pending messages in lease order, sorting only after they change."""

from __future__ import annotations

import random
from collections import Counter

from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.records import QueueRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime

TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"


def pending(partition: int, offset: int) -> list[PendingMessage]:
    return [PendingMessage(partition, offset, f"cpf-{offset}".encode(), value=b"{}")]


def positions(queue: QueueRuntime) -> list[tuple[int, int]]:
    return [(m.partition, m.offset) for m in queue.state().pending]


def test_the_state_lists_pending_messages_in_lease_order_as_they_come_and_go() -> None:
    queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
    for partition, offset in [(1, 4), (1, 5), (0, 7), (0, 2)]:
        queue.add_pending(pending(partition, offset))
    assert positions(queue) == [(0, 2), (1, 4), (1, 5), (0, 7)]
    queue.take(pending(1, 4))
    queue.add_pending(pending(1, 3))
    assert positions(queue) == [(0, 2), (1, 3), (1, 5), (0, 7)]


def test_a_change_that_leaves_pending_alone_reuses_its_sorted_messages() -> None:
    queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
    queue.add_pending(pending(0, 9))
    queue.add_pending(pending(0, 8))
    queue.hold_keys([b"cpf-1"])
    before = queue.state()
    queue.release_keys([b"cpf-1"])
    after = queue.state()
    assert (after is before, after.pending is before.pending, after.keys_in_flight) == (False, True, frozenset())


def test_incremental_changes_keep_the_same_order_as_a_full_sort() -> None:
    rng = random.Random(11)
    queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
    next_offset = dict.fromkeys(range(3), 0)
    for _ in range(300):
        if queue.pending and rng.random() < 0.2:  # a lease: the first messages in order
            queue.take(queue.state().pending[: rng.randint(1, 4)])
        elif queue.pending and rng.random() < 0.3:
            queue.take([rng.choice(list(queue.pending.values()))])
        else:
            partition = rng.randrange(3)
            queue.add_pending(pending(partition, next_offset[partition]))
            next_offset[partition] += rng.randint(1, 3)
        if rng.random() < 0.3:
            assert positions(queue) == sorted(
                ((m.partition, m.offset) for m in queue.pending.values()), key=lambda po: (po[1], po[0])
            )
    assert positions(queue) == sorted(
        ((m.partition, m.offset) for m in queue.pending.values()), key=lambda po: (po[1], po[0])
    )


def test_keys_in_flight_count_each_holder_whatever_the_order_of_holds_and_releases() -> None:
    rng = random.Random(3)
    queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
    expected: Counter[bytes] = Counter()
    holds: list[list[bytes | None]] = []
    for _ in range(400):
        if holds and rng.random() < 0.45:
            keys = holds.pop(rng.randrange(len(holds)))
            queue.release_keys(keys)
            expected.subtract(key for key in keys if key is not None)
        else:  # keys may repeat within a hold and across holds (restored tasks), or be missing
            keys = [
                rng.choice([None, b"a", b"b", b"c", f"k{rng.randrange(50)}".encode()]) for _ in range(rng.randint(1, 6))
            ]
            holds.append(keys)
            queue.hold_keys(keys)
            expected.update(key for key in keys if key is not None)
        assert queue.keys_in_flight == {key: count for key, count in expected.items() if count > 0}


def test_the_state_tells_every_pending_messages_key_in_flight_however_many_keys_are_in_flight() -> None:
    rng = random.Random(5)
    for held_count, pending_count in [(3, 40), (40, 40), (400, 20), (2000, 1), (50, 0)]:
        queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
        queue.hold_keys(f"cpf-{rng.randrange(3000)}".encode() for _ in range(held_count))
        for offset in rng.sample(range(3000), pending_count):
            queue.add_pending(pending(0, offset))
        queue.add_pending([PendingMessage(1, 0, None, value=b"{}")])  # no key: never held back by one
        state = queue.state()
        held = set(queue.keys_in_flight)
        told = [m.key in state.keys_in_flight for m in state.pending]
        assert told == [m.key in held for m in state.pending], (held_count, pending_count)
        assert None not in state.keys_in_flight
        assert len(state.keys_in_flight) <= min(len(held), pending_count) or len(held) <= pending_count + 1
