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

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class HandlerMessage:
    """One message: ``id`` is ``topic/partition/offset`` (stable across attempts), the key is the CPF."""

    id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    attempt: int

    def text(self) -> str:
        return self.value.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.value)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HandlerMessage:
        """From a leased message's JSON (text or base64 key and value, base64 header values)."""
        key = data.get("key")
        return cls(
            id=data["id"],
            topic=data["topic"],
            partition=data["partition"],
            offset=data["offset"],
            key=None if key is None else _bytes(key, data.get("key_encoding")),
            value=_bytes(data["value"], data.get("value_encoding")),
            headers=tuple((name, base64.b64decode(value)) for name, value in data.get("headers") or ()),
            attempt=data["attempt"],
        )


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


def _bytes(text: str, encoding: str | None) -> bytes:
    return base64.b64decode(text) if encoding == "base64" else text.encode("utf-8")
