"""Waiting in tests for something another thread or process makes true, with a deadline.

The one polling loop of the test suite: a test that waits calls ``wait_until`` rather than sleeping
to "give it time", so it goes on as soon as the condition holds and fails saying what it awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

T = TypeVar("T")

#: Often enough that a test goes on promptly, rarely enough not to load the two shared cores.
DEFAULT_EVERY_S: Final = 0.02


class TimedOut(AssertionError):
    """What a test waited for did not happen in time (an ``AssertionError``: the test fails)."""


def wait_until(
    condition: Callable[[], T | None],
    timeout_s: float,
    what: str,
    *,
    every_s: float = DEFAULT_EVERY_S,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``every_s`` until it returns something true, and return that (so never None).

    ``what`` names the awaited event in the failure, e.g. ``"both slots busy"``. Exceptions of the
    ``ignoring`` types count as "not yet" (e.g. a server not listening yet); any other propagates at
    once, so a condition may assert that waiting still makes sense (e.g. the process is alive).

    Raises ``TimedOut`` after ``timeout_s`` seconds, naming ``what``, the time waited and the last
    value returned or exception ignored."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except ignoring as exc:
            last = f"raised {type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = f"returned {value!r}"
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout_s:g} s waiting for {what}; the condition last {last}")
        time.sleep(every_s)
