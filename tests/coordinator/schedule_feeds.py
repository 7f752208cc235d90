"""Callables that schedules publish in the tests (``module:function`` sources), each yielding (key, value) pairs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator


def two_clients() -> Iterator[tuple[str, str]]:
    yield "11111111111", "<req cpf='11111111111'/>"
    yield "22222222222", "<req cpf='22222222222'/>"


def breaks_after_a_batch() -> Iterator[tuple[str, str]]:
    """1,500 records, then the feed fails: the first batch (1,000) is appended before it does."""
    for i in range(1500):
        yield f"{i:011d}", "x"
    raise RuntimeError("the feed went away")


def breaks_at_once() -> Iterator[tuple[str, str]]:
    raise RuntimeError("the feed is down")
    yield "never", "reached"


def not_pairs() -> Iterator[int]:
    yield 5


def slow_clients() -> Iterator[tuple[str, str]]:
    """``SLOW_CLIENTS`` records (5,000 by default), the same ones each time, pausing ``SLOW_PAUSE_S`` after each
    thousand: a tick that takes a while to publish, for killing a coordinator in the middle of one."""
    count = int(os.environ.get("SLOW_CLIENTS", "5000"))
    pause_s = float(os.environ.get("SLOW_PAUSE_S", "0.3"))
    for i in range(count):
        if i and i % 1000 == 0:
            time.sleep(pause_s)
        yield f"{i:011d}", f"<req n='{i}'/>"


NOT_CALLABLE = 42
