"""A message's stable id, ``topic/partition/offset``: the same on every attempt, in ``input.jsonl``,
in a farm's verdicts and in a DLQ record's ``xtreaming-source`` header."""

from __future__ import annotations

from collections.abc import Iterable

from xtreaming.errors import XtreamingError


class InvalidMessageId(XtreamingError, ValueError):
    """Text that is not ``topic/partition/offset``."""


def message_id(topic: str, partition: int, offset: int) -> str:
    """``("T", 0, 42)`` → ``"T/0/42"``."""
    return f"{topic}/{partition}/{offset}"


def message_ids(topic: str, positions: Iterable[tuple[int, int]]) -> list[str]:
    """The ids of a topic's messages at ``(partition, offset)`` positions, in order."""
    prefix = f"{topic}/"
    return [f"{prefix}{partition}/{offset}" for partition, offset in positions]


def parse_message_id(text: str) -> tuple[str, int, int]:
    """``"T/0/42"`` → ``("T", 0, 42)``; raises ``InvalidMessageId`` naming what is wrong."""
    topic, _, rest = text.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if not topic or not _is_number(partition) or not _is_number(rest):
        raise InvalidMessageId(f"message id {text!r}: expected topic/partition/offset, e.g. 'T/0/42'")
    return topic, int(partition), int(rest)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
