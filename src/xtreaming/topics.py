"""Topic names: ``BASE.CONVENIO.KIND.PROCESS`` work topics and their ``.ACK`` / ``.DLQ`` companions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from xtreaming.errors import InvalidTopicName

ACK_SUFFIX: Final = "ACK"
DLQ_SUFFIX: Final = "DLQ"
#: Kafka refuses topic names longer than 249 characters; a work topic keeps room for ".ACK"/".DLQ".
MAX_WORK_TOPIC_LENGTH: Final = 249 - len(".ACK")
KNOWN_KINDS: Final = frozenset({"IMPORTACAO", "COBSINC"})

_WORD = re.compile(r"[A-Z0-9_]+")
_DIGITS = re.compile(r"[0-9]+")
_PARTS: Final = ("base", "convenio", "kind", "process")


@dataclass(frozen=True, slots=True)
class TopicName:
    """A parsed work topic; ``str(t)`` gives the name back."""

    base: str
    convenio: str
    kind: str
    process: str

    @classmethod
    def parse(cls, name: str) -> TopicName:
        """Parse a work topic name; raises InvalidTopicName saying which part is wrong and why."""
        if not name:
            raise InvalidTopicName("topic name is empty: expected BASE.CONVENIO.KIND.PROCESS")
        if len(name) > MAX_WORK_TOPIC_LENGTH:
            raise InvalidTopicName(
                f"topic {name[:40]!r}…: {len(name)} characters, at most {MAX_WORK_TOPIC_LENGTH} "
                "(Kafka's limit of 249 less room for '.ACK'/'.DLQ')"
            )
        parts = name.split(".")
        if is_derived(name):
            raise InvalidTopicName(
                f"topic {name!r} is a derived {parts[-1]} topic, not a work topic BASE.CONVENIO.KIND.PROCESS"
            )
        if len(parts) != len(_PARTS):
            raise InvalidTopicName(
                f"topic {name!r}: expected 4 parts BASE.CONVENIO.KIND.PROCESS separated by '.', got {len(parts)}"
            )
        for label, value in zip(_PARTS, parts, strict=True):
            _check_part(name, label, value)
        return cls(*parts)

    @property
    def ack(self) -> str:
        """The topic that receives one result record per finished message."""
        return f"{self}.{ACK_SUFFIX}"

    @property
    def dlq(self) -> str:
        """The topic that receives messages that failed ``max_attempts`` times."""
        return f"{self}.{DLQ_SUFFIX}"

    @property
    def is_known_kind(self) -> bool:
        return self.kind in KNOWN_KINDS

    def __str__(self) -> str:
        return f"{self.base}.{self.convenio}.{self.kind}.{self.process}"


def _check_part(name: str, label: str, value: str) -> None:
    if not value:
        raise InvalidTopicName(f"topic {name!r}: {label} is empty")
    if label == "convenio":
        if not _DIGITS.fullmatch(value):
            raise InvalidTopicName(f"topic {name!r}: convenio {value!r} must be digits (CODCONVENIO)")
        return
    if _WORD.fullmatch(value):
        return
    if _WORD.fullmatch(value.upper()):
        raise InvalidTopicName(f"topic {name!r}: {label} {value!r} must be upper case ({value.upper()!r})")
    # Name a character no case change would fix: in 'abc-d' the culprit is '-', not 'a'.
    bad = next(ch for ch in value if not _WORD.fullmatch(ch.upper()))
    raise InvalidTopicName(f"topic {name!r}: {label} {value!r} has {bad!r}; only A-Z, 0-9 and '_' are allowed")


def is_derived(name: str) -> bool:
    """True for ``<work topic>.ACK`` and ``<work topic>.DLQ`` names: never consumed as work."""
    head, _, suffix = name.rpartition(".")
    return suffix in (ACK_SUFFIX, DLQ_SUFFIX) and head.count(".") == len(_PARTS) - 1


def source_of(derived: str) -> TopicName:
    """The work topic an ``.ACK``/``.DLQ`` topic belongs to; raises InvalidTopicName otherwise."""
    if not is_derived(derived):
        raise InvalidTopicName(f"topic {derived!r} is not an .ACK or .DLQ topic")
    return TopicName.parse(derived.rpartition(".")[0])


def parse_work_topic(name: str) -> TopicName | None:
    """The parsed work topic, or None for derived and malformed names (for discovery loops)."""
    try:
        return TopicName.parse(name)
    except InvalidTopicName:
        return None
