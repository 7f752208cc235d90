"""Open keys: what ``OpenKeys`` decides at C speed is what the plain rule, one message at a time, decides."""

from __future__ import annotations

import random
from dataclasses import replace

from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.open_keys import Duplicate, OpenKeys


class PlainKeys:
    """The rule written plainly: a key is held by the first unfinished message read with it."""

    def __init__(self) -> None:
        self.holders: dict[bytes, tuple[int, int] | None] = {}

    def admit(self, entries: list[PendingMessage]) -> tuple[list[PendingMessage], list[tuple[int, int] | None]]:
        admitted, holders_of_duplicates = [], []
        for entry in entries:
            if entry.key and entry.key in self.holders:
                holders_of_duplicates.append(self.holders[entry.key])
            else:
                if entry.key:
                    self.holders[entry.key] = (entry.partition, entry.offset)
                admitted.append(entry)
        return admitted, holders_of_duplicates

    def hold(self, entry: PendingMessage) -> None:
        if entry.key:
            self.holders.setdefault(entry.key, (entry.partition, entry.offset))

    def close(self, finished: list[PendingMessage]) -> None:
        for m in finished:
            if m.key and m.key in self.holders and self.holders[m.key] in (None, (m.partition, m.offset)):
                del self.holders[m.key]


def position(duplicate: Duplicate) -> tuple[int, int] | None:
    holder = duplicate.holder
    return None if holder is None else (holder.partition, holder.offset)


def test_admitting_and_closing_agree_with_the_plain_rule() -> None:
    rng = random.Random(13)
    keys = [None, b"", *(f"{i:011d}".encode() for i in range(40))]
    fast, plain = OpenKeys(), PlainKeys()
    unfinished: list[PendingMessage] = []
    offset = 0
    for _ in range(400):
        count = rng.randint(1, 12)
        unique = rng.random() < 0.5  # often a read of new keys only: the bulk path
        chosen = rng.sample(keys[2:], count) if unique else [rng.choice(keys) for _ in range(count)]
        read = [PendingMessage(0, offset + i, key) for i, key in enumerate(chosen)]
        offset += count

        if rng.random() < 0.2:  # read back after a restart, leased before: held, never duplicates
            for entry in read:
                fast.hold(entry)
                plain.hold(entry)
            unfinished += read
        else:
            admitted, duplicates = fast.admit(read)
            expected, holders = plain.admit(read)
            assert (list(admitted), [position(d) for d in duplicates]) == (expected, holders)
            unfinished += admitted

        rng.shuffle(unfinished)
        done = unfinished[: rng.randint(0, min(8, len(unfinished)))]
        unfinished = unfinished[len(done) :]
        if rng.random() < 0.3:  # retried: a copy of the entry finishes, not the object admitted
            done = [replace(m, attempt=m.attempt + 1) for m in done]
        if done:
            fast.close(done)
            plain.close(done)
        assert len(fast) == len(plain.holders)
        assert all(fast.holds(key) for key in plain.holders)


def test_keys_held_before_the_setting_was_on_are_let_go_by_any_message_of_theirs() -> None:
    waiting = PendingMessage(0, 5, b"111")
    opened = OpenKeys.of([waiting, PendingMessage(0, 6, b"222")], keys_in_flight={b"111"})

    [], [duplicate] = opened.admit([PendingMessage(0, 9, b"111")])
    opened.close([PendingMessage(0, 1, b"111")])  # the one that ran, whose position memory does not keep

    assert duplicate.holder is None
    assert not opened.holds(b"111")
    assert opened.holds(b"222")
