"""What a Python handler (``module:function``) receives: a ``Batch`` of ``HandlerMessage``s.

A handler returns None when every message is done, or a mapping of message id to
``"ok" | "error" | "retry"`` (or ``(status, detail)``) for the messages that are not; the
others are ok. Raising retries the whole batch with the exception as the detail::

    def handle(batch: Batch) -> dict[str, str] | None:
        failures = {}
        for message in batch.messages:
            if not import_client(batch.base, message.json()):
                failures[message.id] = ("retry", "database busy")
        return failures
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xtreaming.broker.port import Headers

#: A task's messages on their way to a handler process: one list per ``HandlerMessage`` field, in
#: field order (see ``leased.LeasedMessages.handler_columns``).
Columns = tuple[list[str], list[str], list[int], list[int], list[bytes | None], list[bytes], list[Headers], list[int]]


@dataclass(slots=True, unsafe_hash=True)
class HandlerMessage:
    """One message: ``id`` is ``topic/partition/offset`` (stable across attempts), the key is the CPF.

    Treat it as immutable. Not ``frozen``: thousands are built per task, and a frozen dataclass's
    ``__init__`` cost five times as much (measured); hashed on its fields all the same, as before.
    """

    id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    attempt: int

    def text(self) -> str:
        return self.value.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.value)


def from_columns(columns: Columns) -> list[HandlerMessage]:
    """The handler process's half: every message built, in order, before the handler is called.

    With the garbage collector paused: none of them can be part of a reference cycle, yet building
    thousands sets it off every 700 allocations, each time walking them again as they age through
    its generations (a third of the time of building them, measured); paused, it meets them later
    in one go.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(map(HandlerMessage, *columns))
    finally:
        if collecting:
            gc.enable()


@dataclass(slots=True)
class Batch:
    """A task's messages and where they go: base, convênio, kind and process of their topic."""

    task_id: str
    topic: str
    base: str
    convenio: str
    kind: str
    process: str
    attempt: int
    messages: Sequence[HandlerMessage]
    _report: Callable[[int, int], None] | None = field(default=None, repr=False)

    def progress(self, done: int, total: int | None = None) -> None:
        """Tell the farm how far the batch is (shown on the operator screen)."""
        if self._report is not None:
            self._report(done, len(self.messages) if total is None else total)
