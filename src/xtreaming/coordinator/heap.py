"""The coordinator process's garbage-collector policy, for a heap of millions of long-lived objects.

A loaded coordinator holds queues, tasks in flight and read-ahead messages: millions of tracked
objects. CPython's full collections walk all of them while holding the GIL, 1.4–1.6 s each in
``bench/scheduler.py`` (5 in a run), stalling every decision and request meanwhile. Reference
counting frees almost everything the coordinator drops (its records and messages hold no
cycles), so the collector can be asked to do far less.
"""

from __future__ import annotations

import gc
from typing import Final

#: Net container allocations between young collections (CPython's default: 700). With more room,
#: most short-lived objects (snapshots, leases, a request's objects) are freed by reference
#: counting before a collection sees them, so far fewer are promoted to the old generation; its
#: growth is what triggers full collections. In ``bench/scheduler.py``: no full collection left
#: and a third of the collector's time, for young collections of ~3 ms instead of ~0.2 ms.
YOUNG_THRESHOLD: Final = 10_000


def settle_heap() -> None:
    """Call once the coordinator has loaded its state, before it serves.

    Collects once, then freezes what survives (``gc.freeze``): no later collection walks the
    loaded state again (frozen objects are still freed by reference counting; only a reference
    cycle among them would never be). Then raises the young generation's threshold
    (``YOUNG_THRESHOLD``): freezing alone makes full collections *more* frequent, as CPython
    then measures the old generation's growth against the small unfrozen part. Objects made
    later, such as read-ahead messages, are collected as usual.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
