"""A task's messages as the lease carries them: one list per field (``TaskMessagesOut``), the values
as they were framed after the answer's JSON (``xtreaming.lease_wire``), and what the farm makes of
them: ``input.jsonl`` lines for a command, decoded columns for a handler process.

Columns, not one JSON object per message: a lease carries thousands, and lists of numbers and
strings parse at C speed; a message is built only where it is needed, once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from xtreaming.farm.batch import Columns, Headers

#: The JSON columns a lease gives for a task's messages, all of one length (and as long as its values).
FIELDS = ("partitions", "offsets", "keys", "attempts")


class InvalidMessages(ValueError):
    """Columns that do not describe a task's messages (missing, of different lengths, bad indexes)."""


@dataclass(frozen=True, slots=True)
class LeasedMessages:
    """Message ``i`` of a task is ``partitions[i]``, ``offsets[i]``, ``keys[i]``, ``values[i]``…; keys
    are text, except at the indexes in ``base64_keys``; values are the message's bytes; ``headers``
    holds each message's ``[name, base64 value]`` pairs, or is None when no message has any."""

    topic: str
    partitions: Sequence[int]
    offsets: Sequence[int]
    keys: Sequence[str | None]
    values: Sequence[bytes]
    attempts: Sequence[int]
    headers: Sequence[Sequence[Sequence[str]]] | None = None
    base64_keys: frozenset[int] = frozenset()

    @classmethod
    def from_json(cls, topic: str, data: Mapping[str, Any], values: Sequence[bytes]) -> LeasedMessages:
        """From a lease's ``messages`` object and the task's values; raises InvalidMessages saying what is wrong."""
        if not isinstance(data, Mapping):
            raise InvalidMessages(f"messages: expected an object of columns, got {type(data).__name__}")
        columns = {}
        for name in FIELDS:
            column = data.get(name)
            if not isinstance(column, list):
                raise InvalidMessages(f"messages: column {name!r} is missing or not a list")
            columns[name] = column
        count = len(columns["offsets"])
        headers = data.get("headers")
        lengths = (
            {name: len(column) for name, column in columns.items()}
            | {"values": len(values)}
            | ({"headers": len(headers)} if isinstance(headers, list) else {})
        )
        if any(length != count for length in lengths.values()):
            raise InvalidMessages(f"messages: columns of different lengths {lengths}")
        base64_keys = frozenset(data.get("base64_keys") or ())
        if any(not isinstance(i, int) or not 0 <= i < count for i in base64_keys):
            raise InvalidMessages(f"messages: base64_keys lists an index outside 0..{count - 1}")
        return cls(
            topic,
            columns["partitions"],
            columns["offsets"],
            columns["keys"],
            values,
            columns["attempts"],
            headers if isinstance(headers, list) and any(headers) else None,
            base64_keys,
        )

    def __len__(self) -> int:
        return len(self.offsets)

    def ids(self) -> list[str]:
        """Each message's stable id, ``topic/partition/offset``."""
        topic = self.topic
        return [f"{topic}/{p}/{o}" for p, o in zip(self.partitions, self.offsets, strict=True)]

    def lines(self) -> Iterator[str]:
        """``input.jsonl``: one JSON object per message (id, topic, partition, offset, key, key_encoding,
        value, value_encoding, headers as [name, base64] pairs, attempt), each ending with a newline.

        The text of ``json.dumps(object, ensure_ascii=False, separators=(",", ":"))``, written by hand
        (thousands of lines a task): one C call per string field.
        """
        name = encode_basestring(self.topic)
        head, topic = f'{{"id":{name[:-1]}/', f',"topic":{name},"partition":'
        headers = self.headers or ()
        for i, (p, o, key, value, attempt) in enumerate(
            zip(self.partitions, self.offsets, self.keys, self.values, self.attempts, strict=True)
        ):
            key_text = "null" if key is None else encode_basestring(key)
            key_encoding = "base64" if i in self.base64_keys else "utf-8"
            try:
                value_text, value_encoding = value.decode(), "utf-8"
            except UnicodeDecodeError:
                value_text, value_encoding = base64.b64encode(value).decode("ascii"), "base64"
            pairs = json.dumps(headers[i], ensure_ascii=False, separators=(",", ":")) if headers else "[]"
            yield (
                f'{head}{p}/{o}"{topic}{p},"offset":{o},"key":{key_text},"key_encoding":"{key_encoding}",'
                f'"value":{encode_basestring(value_text)},"value_encoding":"{value_encoding}",'
                f'"headers":{pairs},"attempt":{attempt}}}\n'
            )

    def handler_columns(self) -> Columns:
        """What a handler process builds its ``HandlerMessage``s from: keys and values as bytes, headers
        decoded, one shared topic string (pickled once)."""
        keys = [None if key is None else key.encode() for key in self.keys]
        for i in self.base64_keys:
            keys[i] = base64.b64decode(self.keys[i] or "")
        count = len(self)
        headers: list[Headers] = (
            [tuple((str(n), base64.b64decode(v)) for n, v in pairs) for pairs in self.headers]
            if self.headers
            else [()] * count
        )
        return (
            self.ids(),
            [self.topic] * count,
            list(self.partitions),
            list(self.offsets),
            keys,
            list(self.values),
            headers,
            list(self.attempts),
        )
