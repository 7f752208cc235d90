"""The ledger's finished offsets with their runs: whatever comes and goes, the runs are those of the offsets."""

from __future__ import annotations

import random

import pytest

from xtreaming.coordinator.core.offset_runs import OffsetRuns


def runs_of(offsets: set[int]) -> tuple[tuple[int, int], ...]:
    """The runs of ``offsets`` worked out afresh, the plain way."""
    runs: list[tuple[int, int]] = []
    for offset in sorted(offsets):
        if runs and runs[-1][1] == offset:
            runs[-1] = (runs[-1][0], offset + 1)
        else:
            runs.append((offset, offset + 1))
    return tuple(runs)


def test_adding_joins_runs_on_either_side() -> None:
    offsets = OffsetRuns([1, 2, 5, 6, 9])
    assert offsets.runs() == ((1, 3), (5, 7), (9, 10))
    offsets.add(4)
    offsets.add(3)
    assert offsets.runs() == ((1, 7), (9, 10))
    offsets.add(3)  # again: nothing changes
    assert (offsets.runs(), len(offsets)) == (((1, 7), (9, 10)), 7)


def test_discarding_splits_a_run_wherever_the_offset_is_in_it() -> None:
    offsets = OffsetRuns(range(10, 20))
    offsets.discard(10)  # the first of its run
    offsets.discard(19)  # the last
    offsets.discard(14)  # inside
    offsets.discard(99)  # absent: nothing changes
    assert offsets.runs() == ((11, 14), (15, 19))
    assert (13 in offsets, 14 in offsets, sorted(offsets)) == (True, False, [11, 12, 13, 15, 16, 17, 18])


@pytest.mark.parametrize("seed", range(20))
def test_any_mix_of_adds_and_discards_leaves_the_runs_of_the_offsets(seed: int) -> None:
    rng = random.Random(seed)
    offsets, model = OffsetRuns(), set()
    for _ in range(2000):
        offset = rng.randrange(200)
        if rng.random() < 0.6:
            offsets.add(offset)
            model.add(offset)
        else:
            offsets.discard(offset)
            model.discard(offset)
        if rng.random() < 0.1:
            assert offsets.runs() == runs_of(model)
    assert (offsets.runs(), set(offsets), len(offsets)) == (runs_of(model), model, len(model))
