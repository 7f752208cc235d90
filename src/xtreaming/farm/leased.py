"""A task's messages as the lease carries them: one sequence per field, unpacked from the framed
answer (``xtreaming.wire.lease_frame``), and what the farm makes of them: ``input.jsonl`` lines for a
command, columns for a handler process.

Columns, not one object per message: a lease carries thousands, and packed arrays unpack at C
speed; a message is built only where it is needed, once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from xtreaming.broker.port import Headers
from xtreaming.farm.batch import Columns
from xtreaming.wire.lease_frame import MessageColumns
from xtreaming.wire.message_id import message_ids


class InvalidMessages(ValueError):
    """A task's ``messages`` object that does not describe its messages (not an object, or headers
    that are not one list per message)."""


@dataclass(frozen=True, slots=True)
class LeasedMessages:
    """Message ``i`` of a task is ``partitions[i]``, ``offsets[i]``, ``keys[i]``, ``values[i]``…; keys
    and values are the message's bytes; ``headers`` holds each message's ``[name, base64 value]``
    pairs, or is None when no message has any."""

    topic: str
    partitions: Sequence[int]
    offsets: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes]
    attempts: Sequence[int]
    headers: Sequence[Sequence[Sequence[str]]] | None = None

    @classmethod
    def from_lease(cls, topic: str, data: Mapping[str, Any], columns: MessageColumns) -> LeasedMessages:
        """From a task's ``messages`` object in the answer's head and its unpacked columns; raises
        InvalidMessages saying what is wrong."""
        if not isinstance(data, Mapping):
            raise InvalidMessages(f"messages: expected an object, got {type(data).__name__}")
        count = len(columns.offsets)
        headers = data.get("headers")
        if headers is not None and (not isinstance(headers, list) or len(headers) != count):
            raise InvalidMessages(f"messages: headers must be null or a list of {count} (one per message)")
        return cls(
            topic,
            columns.partitions,
            columns.offsets,
            columns.keys,
            columns.values,
            columns.attempts,
            headers if headers and any(headers) else None,
        )

    def __len__(self) -> int:
        return len(self.offsets)

    def ids(self) -> list[str]:
        """Each message's stable id, ``topic/partition/offset``."""
        return message_ids(self.topic, zip(self.partitions, self.offsets, strict=True))

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
            key_text, key_encoding = ("null", "utf-8") if key is None else _text(key)
            value_text, value_encoding = _text(value)
            pairs = json.dumps(headers[i], ensure_ascii=False, separators=(",", ":")) if headers else "[]"
            yield (
                f'{head}{p}/{o}"{topic}{p},"offset":{o},"key":{key_text},"key_encoding":"{key_encoding}",'
                f'"value":{value_text},"value_encoding":"{value_encoding}",'
                f'"headers":{pairs},"attempt":{attempt}}}\n'
            )

    def handler_columns(self) -> Columns:
        """What a handler process builds its ``HandlerMessage``s from: keys and values as bytes, headers
        decoded, one shared topic string (pickled once)."""
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
            list(self.keys),
            list(self.values),
            headers,
            list(self.attempts),
        )


def _text(data: bytes) -> tuple[str, str]:
    """``data`` as a JSON string and its encoding: the text when it is UTF-8, else base64."""
    try:
        return encode_basestring(data.decode()), "utf-8"
    except UnicodeDecodeError:
        return f'"{base64.b64encode(data).decode("ascii")}"', "base64"
