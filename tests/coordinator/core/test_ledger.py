"""The finished-offset ledger: watermark under out-of-order completion, idempotence, export/restore."""

from __future__ import annotations

import random

import pytest

from tests.coordinator.core.test_offset_runs import runs_of
from xtreaming.coordinator.core.ledger import LedgerState, PartitionLedger


def handed_out(*offsets: int, state: LedgerState | None = None) -> PartitionLedger:
    ledger = PartitionLedger(state)
    for offset in offsets:
        ledger.hand_out(offset)
    return ledger


def test_a_fresh_ledger_commits_offset_zero() -> None:
    ledger = PartitionLedger()
    assert (ledger.watermark, ledger.high, ledger.in_flight, ledger.export()) == (0, 0, 0, LedgerState(0))


def test_the_watermark_is_the_lowest_unfinished_offset_under_out_of_order_completion() -> None:
    ledger = handed_out(*range(6))
    watermarks = []
    for offset in (3, 1, 5, 0, 4, 2):
        ledger.finish(offset)
        watermarks.append(ledger.watermark)
    assert watermarks == [0, 0, 0, 2, 2, 6]
    assert (ledger.in_flight, ledger.export()) == (0, LedgerState(6))


def test_finished_offsets_above_the_watermark_export_as_ranges() -> None:
    ledger = handed_out(*range(10))
    for offset in (2, 3, 4, 6, 9):
        ledger.finish(offset)
    assert ledger.export() == LedgerState(0, ((2, 5), (6, 7), (9, 10)))
    assert list(ledger.export().offsets()) == [2, 3, 4, 6, 9]


def test_finishing_twice_is_a_no_op_the_second_time() -> None:
    ledger = handed_out(0, 1, 2)
    assert ledger.finish(1) is True
    assert ledger.finish(1) is False
    assert ledger.finish(0) is True
    assert ledger.finish(0) is False  # now below the watermark
    assert (ledger.watermark, ledger.in_flight, ledger.export()) == (2, 1, LedgerState(2))


def test_finishing_an_offset_never_handed_out_changes_nothing() -> None:
    ledger = handed_out(0, 1)
    assert ledger.finish(7) is False
    assert ledger.finish(-1) is False
    assert (ledger.watermark, ledger.high, ledger.in_flight) == (0, 2, 2)
    assert ledger.hand_out(7) is True  # not recorded as finished by the bogus report


def test_handing_out_again_is_refused_without_error() -> None:
    ledger = handed_out(0, 1, 2)
    ledger.finish(0)
    ledger.finish(2)
    assert [ledger.hand_out(o) for o in (0, 1, 2)] == [False, False, False]
    assert (ledger.watermark, ledger.in_flight) == (1, 1)


def test_handing_out_below_the_read_position_out_of_order_is_an_error() -> None:
    ledger = handed_out(0, 5)
    with pytest.raises(ValueError, match="offset 3 is below the read position 6 and was never handed out"):
        ledger.hand_out(3)


def test_offsets_absent_from_the_log_do_not_hold_the_watermark_back() -> None:
    ledger = handed_out(0, 1, 5)  # 2..4 were never in the log (e.g. compacted, transaction markers)
    ledger.finish(0)
    ledger.finish(1)
    assert ledger.watermark == 5
    ledger.finish(5)
    assert (ledger.watermark, ledger.high) == (6, 6)
    assert ledger.is_finished(3)


def test_offsets_a_read_found_empty_at_the_end_count_as_finished() -> None:
    ledger = PartitionLedger()
    ledger.hand_out_all([0, 1, 2])  # a transaction's records; its commit marker holds offset 3
    ledger.finish_all([0, 1])

    ledger.skip_to(4)

    assert (ledger.high, ledger.watermark) == (4, 2)  # offset 2 is still in flight
    ledger.finish(2)
    assert ledger.watermark == 4
    assert ledger.export() == LedgerState(4)


def test_skipping_to_an_offset_already_read_changes_nothing() -> None:
    ledger = PartitionLedger()
    ledger.hand_out_all([0, 1, 2])

    ledger.skip_to(2)

    assert (ledger.high, ledger.watermark, ledger.in_flight) == (3, 0, 3)


def test_a_restored_finished_offset_inside_a_skipped_range_is_forgotten() -> None:
    ledger = PartitionLedger(LedgerState(0, ((5, 6),)))

    ledger.skip_to(8)

    assert ledger.export() == LedgerState(8)


def test_a_restart_redoes_only_what_was_in_flight() -> None:
    before = handed_out(*range(10))
    for offset in (1, 2, 4, 5, 8):
        before.finish(offset)
    state = before.export()
    assert state == LedgerState(0, ((1, 3), (4, 6), (8, 9)))

    after = PartitionLedger(state)
    assert (after.watermark, after.high) == (0, 0)
    redone = [o for o in range(10) if after.hand_out(o)]
    assert redone == [0, 3, 6, 7, 9]
    for offset in redone:
        assert after.finish(offset) is True
    assert after.export() == LedgerState(10)


def test_a_restored_ledger_steps_over_finished_offsets_once_the_gap_below_closes() -> None:
    ledger = PartitionLedger(LedgerState(10, ((11, 13), (14, 15))))
    assert ledger.is_finished(12)
    assert not ledger.is_finished(13)
    assert ledger.hand_out(10) is True
    assert ledger.finish(10) is True
    assert (ledger.watermark, ledger.export()) == (13, LedgerState(13, ((14, 15),)))
    assert [ledger.hand_out(o) for o in (11, 12, 13, 14, 15)] == [False, False, True, False, True]
    assert ledger.finish(13)
    assert ledger.finish(15)
    assert ledger.export() == LedgerState(16)


def test_a_restored_finished_offset_skipped_by_the_log_is_forgotten() -> None:
    ledger = PartitionLedger(LedgerState(0, ((2, 3),)))
    ledger.hand_out(0)
    ledger.hand_out(5)  # 1..4 absent from the log
    ledger.finish(0)
    ledger.finish(5)
    assert ledger.export() == LedgerState(6)


def test_completion_order_does_not_matter() -> None:
    rng = random.Random(7)
    ledger = PartitionLedger()
    outstanding: list[int] = []
    finished = 0
    for offset in range(5_000):
        ledger.hand_out(offset)
        outstanding.append(offset)
        if len(outstanding) > 64:  # a bounded read-ahead window
            finished += ledger.finish(outstanding.pop(rng.randrange(len(outstanding))))
            assert ledger.watermark == min(outstanding)
            assert len(ledger.export().finished) <= 64
    for offset in rng.sample(outstanding, len(outstanding)):
        finished += ledger.finish(offset)
    assert (finished, ledger.watermark, ledger.in_flight, ledger.export()) == (5_000, 5_000, 0, LedgerState(5_000))


@pytest.mark.parametrize("restored", [None, LedgerState(3, ((5, 7), (9, 10)))])
def test_the_bulk_methods_do_what_one_offset_at_a_time_does(restored: LedgerState | None) -> None:
    rng = random.Random(13)
    bulk, single = PartitionLedger(restored), PartitionLedger(restored)
    out: list[int] = []
    offset = 0
    for _ in range(400):
        if out and rng.random() < 0.5:
            done = [*rng.sample(out, rng.randint(1, len(out))), 10**9]  # and one never handed out
            assert bulk.finish_all(done) == sum(single.finish(o) for o in done)
            out = [o for o in out if o not in done]
        else:  # a read of increasing offsets, with gaps (absent from the log)
            read = []
            for _ in range(rng.randint(1, 6)):
                offset += rng.randint(1, 2)
                read.append(offset)
            assert list(bulk.hand_out_all(read)) == [o for o in read if single.hand_out(o)]
            out += [o for o in read if not bulk.is_finished(o)]
        assert (bulk.watermark, bulk.high, bulk.in_flight, bulk.export()) == (
            single.watermark,
            single.high,
            single.in_flight,
            single.export(),
        )


@pytest.mark.parametrize(
    ("watermark", "finished"),
    [
        (-1, ()),
        (5, ((5, 6),)),  # the watermark itself is unfinished
        (5, ((7, 7),)),
        (5, ((8, 9), (7, 8))),
        (5, ((7, 9), (8, 10))),
    ],
)
def test_a_corrupt_state_is_refused(watermark: int, finished: tuple[tuple[int, int], ...]) -> None:
    with pytest.raises(ValueError, match="ledger"):
        LedgerState(watermark, finished)


@pytest.mark.parametrize("seed", range(20))
def test_a_state_says_which_offsets_are_finished_and_finishes_more_as_a_set_of_them_would(seed: int) -> None:
    rng = random.Random(seed)
    watermark = rng.randrange(5)
    done = {o for o in range(watermark + 1, 60) if rng.random() < 0.4}
    state = LedgerState(watermark, runs_of(done))
    more = [rng.randrange(70) for _ in range(rng.randrange(12))]

    finished = state.finishing(more)

    every = set(range(watermark)) | done | set(more)
    expected_watermark = next(o for o in range(80) if o not in every)
    expected = {o for o in every if o > expected_watermark}
    assert [o for o in range(80) if state.is_finished(o)] == sorted(set(range(watermark)) | done)
    assert finished.watermark == expected_watermark
    assert set(finished.offsets()) == expected
    assert state.finishing([o for o in range(80) if state.is_finished(o)]) is state  # nothing new: unchanged
