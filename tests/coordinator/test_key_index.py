"""The key index: what its batched SQL decides is what the rule, written plainly one message at a time, decides."""

from __future__ import annotations

import random

import pytest

from xtreaming.coordinator import key_index
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.key_index import KeyIndex, Position


class PlainIndex:
    """The rule written plainly: a key is held by its first unfinished message; a holder let go at a log
    position still holds it for the messages of its partition before that position."""

    def __init__(self) -> None:
        self.holders: dict[bytes, tuple[int, int, int | None]] = {}
        self.duplicates: dict[tuple[int, int], Position] = {}
        self.finished: set[tuple[int, int]] = set()

    def is_finished(self, partition: int, offset: int) -> bool:
        return (partition, offset) in self.finished

    def holds(self, held: tuple[int, int, int | None], partition: int, offset: int) -> bool:
        if held[2] is None:
            return not self.is_finished(held[0], held[1])
        return held[0] == partition and offset < held[2]

    def judge(self, partition: int, keyed: list[tuple[int, bytes]], read_from: int) -> None:
        for offset, key in keyed:
            held = self.holders.get(key)
            if held is not None and self.holds(held, partition, offset):
                if offset >= read_from:
                    self.duplicates[(partition, offset)] = (held[0], held[1])
            else:
                self.holders[key] = (partition, offset, None)

    def take(self, partition: int, first: int, last: int) -> dict[int, Position]:
        taken = {o: h for (p, o), h in self.duplicates.items() if p == partition and first <= o <= last}
        for offset in taken:
            del self.duplicates[(partition, offset)]
        return taken

    def release(self, partition: int, finished: list[PendingMessage], at: int | None) -> None:
        for m in finished:
            self.finished.add((partition, m.offset))
            held = self.holders.get(m.key) if m.key else None
            if at is not None and held is not None and held[:2] == (partition, m.offset):
                self.holders[m.key] = (partition, m.offset, at)  # type: ignore[index]  # m.key: found by it


@pytest.mark.parametrize("seed", range(5))
def test_judging_taking_and_releasing_agree_with_the_plain_rule(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_index, "ROWS_PER_STATEMENT", 7)  # batches cut into several statements
    rng = random.Random(seed)
    keys = [f"{i:011d}".encode() for i in range(30)]
    index, plain = KeyIndex(), PlainIndex()
    ends = {0: 0, 1: 0}
    unfinished: dict[int, list[PendingMessage]] = {0: [], 1: []}
    for _ in range(300):
        partition = rng.randrange(2)
        action = rng.random()
        if action < 0.5:  # a scouted read, some of it read by intake already
            keyed = [(ends[partition] + i, rng.choice(keys)) for i in range(rng.randint(1, 20))]
            ends[partition] += len(keyed)
            read_from = ends[partition] - rng.randint(0, len(keyed))
            index.judge("T", partition, keyed, read_from, plain.is_finished)
            plain.judge(partition, keyed, read_from)
            unfinished[partition] += [PendingMessage(partition, offset, key) for offset, key in keyed]
        elif action < 0.75:  # intake reads a range
            first = rng.randrange(max(1, ends[partition]))
            last = first + rng.randint(0, 20)
            assert index.take("T", partition, first, last) == plain.take(partition, first, last)
        else:  # messages finish: the ledger says so, and while not every copy is judged, from the log's end on
            rng.shuffle(unfinished[partition])
            finished, unfinished[partition] = unfinished[partition][:5], unfinished[partition][5:]
            at = None if rng.random() < 0.5 else ends[partition]
            if at is not None:
                index.release("T", partition, finished, at)
            plain.release(partition, finished, at)
    for partition, end in ends.items():
        assert index.take("T", partition, 0, end) == plain.take(partition, 0, end)
    index.close()


def never_finished(partition: int, offset: int) -> bool:
    return False


def test_a_topic_forgotten_keeps_nothing_and_its_keys_are_new_again() -> None:
    index = KeyIndex()
    index.judge("T", 0, [(0, b"111"), (1, b"111")], 0, never_finished)
    index.forget("T")
    index.judge("T", 0, [(2, b"111"), (3, b"222")], 0, never_finished)
    index.purge(1)  # the forgotten rows, one at a time
    index.purge(1)
    index.purge(1)

    assert index.take("T", 0, 0, 3) == {}
    index.close()
