"""Python handlers for the handler-mode tests (imported inside the farm's worker processes)."""

from __future__ import annotations

import os
import struct
import time

from xtreaming.farm.batch import Batch


def echo(batch: Batch) -> dict[str, tuple[str, str]]:
    """Every message ok, its detail saying what the handler saw."""
    batch.progress(2)
    return {
        m.id: ("ok", f"{batch.base}/{batch.kind} key={m.key!r} value={m.value!r} attempt={m.attempt} pid={os.getpid()}")
        for m in batch.messages
    }


def fields(batch: Batch) -> dict[str, tuple[str, str]]:
    """Every message ok, its detail the message as the handler got it."""
    return {m.id: ("ok", repr(m)) for m in batch.messages}


def second_retried(batch: Batch) -> dict[str, str]:
    return {batch.messages[1].id: "retry"}


def raises(batch: Batch) -> None:
    raise ValueError(f"boom in {batch.topic}")


def dies(batch: Batch) -> None:
    os._exit(7)


def hangs(batch: Batch) -> None:
    """The fault under test: a handler that does not return, until the farm kills its process."""
    time.sleep(600)


def bad_result(batch: Batch) -> list[str]:
    return ["not", "a", "mapping"]


NOT_CALLABLE = 42


def every_tenth_retried_once(batch: Batch) -> dict[str, str]:
    """A message whose offset ends in 0 is retried at its first attempt; every other one is ok."""
    return {m.id: "retry" for m in batch.messages if m.attempt == 1 and m.id.endswith("0")}


def naps(batch: Batch) -> None:
    """Every message ok, after half a second: the farm has moved on to something else meanwhile."""
    time.sleep(0.5)


def half_a_message_then_hangs(batch: Batch) -> None:
    """The fault under test: the start of a message on the pipe to the farm, and never its rest (as a process stopped
    while writing would). The pipe is reached through the progress callback, which holds it."""
    closure = getattr(batch._report, "__closure__", None) or ()
    conn = next(cell.cell_contents for cell in closure if hasattr(cell.cell_contents, "fileno"))
    os.write(conn.fileno(), struct.pack("!i", 1000) + b"the start of a message")
    time.sleep(600)


def first_hangs(batch: Batch) -> None:
    """The message keyed 00000000000 hangs (until the farm kills its process); every other one is ok at once."""
    if any(m.key == b"00000000000" for m in batch.messages):
        time.sleep(600)
