"""The outbox: which results ride on a lease request and which the reporter sends on their own."""

from __future__ import annotations

import threading
import time

from tests.waiting import wait_until
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


class CountedOutbox(Outbox):
    """An outbox counting how often the reporter, woken, looks for something to send."""

    looks = 0

    def _sendable(self) -> bool:
        self.looks += 1
        return super()._sendable()


def test_the_reporter_is_woken_only_when_a_report_may_be_its_to_send() -> None:
    outbox = CountedOutbox()
    outbox.handoff(False)
    sent: list[Report] = []
    reporter = threading.Thread(target=lambda: sent.extend(outbox.wait_for_reporter(10)))
    reporter.start()
    wait_until(lambda: outbox.looks == 1, 5, "the reporter to wait")

    for _ in range(100):  # what each lease request of a farm of one-message tasks does
        outbox.put(SMALL)
        carried = outbox.take_piggyback()
        outbox.done(len(carried))
        outbox.handoff(False)
        time.sleep(0.001)  # a woken reporter runs meanwhile
    woken_for_nothing = outbox.looks - 1
    outbox.put(LARGE)  # never rides on a lease request: the reporter's
    reporter.join(timeout=5)

    assert (woken_for_nothing, sent) == (0, [LARGE])
    assert outbox.wait_empty(0) is False  # the large one is in transit
    outbox.done(1)
    assert outbox.wait_empty(0)


def test_small_reports_waiting_are_handed_to_the_reporter_when_the_dispatcher_hands_off() -> None:
    outbox = Outbox()
    outbox.handoff(False)
    outbox.put(SMALL)
    sent: list[Report] = []
    reporter = threading.Thread(target=lambda: sent.extend(outbox.wait_for_reporter(10)))
    reporter.start()

    outbox.handoff(True)
    reporter.join(timeout=5)

    assert (reporter.is_alive(), sent) == (False, [SMALL])


def test_wait_empty_returns_once_the_last_report_in_transit_is_done() -> None:
    outbox = Outbox()
    outbox.put(SMALL)
    [taken] = outbox.take_piggyback()
    emptied: list[bool] = []
    waiter = threading.Thread(target=lambda: emptied.append(outbox.wait_empty(10)))
    waiter.start()

    outbox.done(1)
    waiter.join(timeout=5)

    assert (taken, waiter.is_alive(), emptied) == (SMALL, False, [True])


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first_s=1, max_s=4)

    delays = [backoff.next_delay() for _ in range(4)]
    backoff.reset()

    for delay, expected in zip(delays, [1, 2, 4, 4], strict=True):
        assert 0.8 * expected <= delay <= 1.2 * expected  # ±20% jitter
    assert 0.8 <= backoff.next_delay() <= 1.2
