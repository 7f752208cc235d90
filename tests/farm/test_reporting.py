"""The outbox: which results ride on a lease request and which the reporter sends on their own."""

from __future__ import annotations

from xtreaming.farm.reporting import MAX_PIGGYBACK_RESULTS, Backoff, Outbox, Report

SMALL = Report("small", {"default": "ok", "results": []})
LARGE = Report("large", {"default": "ok", "results": [{"id": str(i)} for i in range(MAX_PIGGYBACK_RESULTS + 1)]})
REFUSED = Report("refused", {"default": "ok"}, solo=True)


def test_small_results_ride_on_the_lease_and_the_others_go_alone() -> None:
    outbox = Outbox()
    outbox.handoff(False)
    for report in (SMALL, LARGE, REFUSED):
        outbox.put(report)

    carried = outbox.take_piggyback()
    alone = outbox.wait_for_reporter(0)

    assert carried == [SMALL]
    assert alone == [LARGE, REFUSED]


def test_during_a_long_poll_the_reporter_sends_everything() -> None:
    outbox = Outbox()
    outbox.handoff(True)
    outbox.put(SMALL)

    assert outbox.wait_for_reporter(0) == [SMALL]
    assert not outbox.wait_empty(0)  # taken, not yet delivered
    outbox.done(1)
    assert outbox.wait_empty(0)


def test_unsent_results_go_back_first_in_their_order() -> None:
    outbox = Outbox()
    outbox.put(LARGE)
    taken = [SMALL, REFUSED]

    outbox.put_back(taken)

    assert outbox.wait_for_reporter(0) == [SMALL, REFUSED, LARGE]


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first_s=1, max_s=4)

    delays = [backoff.next_delay() for _ in range(4)]
    backoff.reset()

    for delay, expected in zip(delays, [1, 2, 4, 4], strict=True):
        assert 0.8 * expected <= delay <= 1.2 * expected  # ±20% jitter
    assert 0.8 <= backoff.next_delay() <= 1.2
