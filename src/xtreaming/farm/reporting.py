"""Results waiting to reach the coordinator, and the back-off used while it does not answer.

A finished task's slot first reports it together with its lease of the next task (see
``node``); when that is not possible its completion goes into the ``Outbox``. Small ones ride on
the next lease request (one round trip settles a task and asks for the next); while the dispatcher cannot
send them soon (its long-poll is waiting, the coordinator is down, the farm is stopping) the
reporter thread sends them on their own. Nothing is dropped while the coordinator is away.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: A completion listing more messages than this goes on its own, not inside a lease request.
MAX_PIGGYBACK_RESULTS: Final = 200
#: At most this many completions ride on one lease request.
MAX_PIGGYBACK_COMPLETIONS: Final = 64


@dataclass(frozen=True, slots=True)
class Report:
    """A finished task's ``/complete`` body, waiting to be sent."""

    task_id: str
    body: Mapping[str, Any]
    #: Sent on its own only: the coordinator refused a lease request that carried it.
    solo: bool = False

    @property
    def small(self) -> bool:
        """Whether it may ride on a lease request."""
        return not self.solo and len(self.body.get("results") or ()) <= MAX_PIGGYBACK_RESULTS


class Outbox:
    """Thread-safe queue of reports; ``handoff`` says whether the reporter thread should send them.

    Waiters are woken only when what they wait for may have come: the reporter (``_sendable``) when a report
    comes it may send, ``wait_empty`` when the last report in transit is done. Every lease request hands the
    reports off and back and marks those it carried done; waking the reporter each time for nothing cost a
    farm of one-message tasks a thread switch per request."""

    def __init__(self) -> None:
        self._reports: deque[Report] = deque()
        self._handoff = True
        self._closed = False
        self._in_transit = 0
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # something may be sendable (``wait_for_reporter``)
        self._emptied = threading.Condition(lock)  # nothing left nor in transit (``wait_empty``)

    def put(self, report: Report) -> None:
        with self._changed:
            self._reports.append(report)
            if self._handoff or not report.small:  # else the reporter has nothing more to send: not woken
                self._changed.notify_all()

    def put_back(self, reports: list[Report]) -> None:
        """Reports that could not be sent, back at the front in their order (then call ``done``)."""
        with self._changed:
            self._reports.extendleft(reversed(reports))
            self._changed.notify_all()

    def take_piggyback(self) -> list[Report]:
        """The small reports a lease request can carry (the large ones stay for the reporter)."""
        with self._changed:
            taken = [r for r in self._reports if r.small][:MAX_PIGGYBACK_COMPLETIONS]
            for report in taken:
                self._reports.remove(report)
            self._in_transit += len(taken)
            return taken

    def handoff(self, on: bool) -> None:
        """On: the reporter sends everything; off: the dispatcher is about to carry small reports itself."""
        with self._changed:
            turned_on = on and not self._handoff
            self._handoff = on
            if turned_on and self._reports:  # small reports waiting became the reporter's
                self._changed.notify_all()

    def wait_for_reporter(self, timeout_s: float) -> list[Report]:
        """What the reporter should send now (waits up to ``timeout_s``); [] when there is nothing."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._sendable(), timeout_s)
            taken = [r for r in self._reports if self._handoff or not r.small]
            for report in taken:
                self._reports.remove(report)
            self._in_transit += len(taken)
            return taken

    def done(self, count: int) -> None:
        """``count`` reports taken earlier were sent, or put back."""
        with self._changed:
            self._in_transit -= count
            if not self._reports and not self._in_transit:
                self._emptied.notify_all()

    def _sendable(self) -> bool:
        return any(self._handoff or not r.small for r in self._reports)

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until every report reached the coordinator; False at the timeout."""
        with self._emptied:
            return self._emptied.wait_for(lambda: not self._reports and not self._in_transit, timeout_s)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._reports)


class Backoff:
    """Delays between attempts at an unreachable coordinator: doubling, capped, with ±20% jitter
    so that many farms coming back after an outage do not all call at the same instant."""

    def __init__(self, first_s: float = 0.2, max_s: float = 10.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next_s = first_s

    def next_delay(self) -> float:
        delay = self._next_s
        self._next_s = min(self.max_s, self._next_s * 2)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next_s = self.first_s
