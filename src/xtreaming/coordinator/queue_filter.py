"""Which queues an operator's bulk action is for: a base, a kind and a pattern over the topic name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from xtreaming.coordinator.patterns import compile_pattern
from xtreaming.errors import InvalidInput

#: What the description shows for a criterion not given: any value passes it.
ANY: Final = "*"


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Queues of ``base`` and of ``kind`` whose topic ``pattern`` matches (anywhere: anchor with ``^…$``);
    a criterion left out lets every queue through. The pattern runs on RE2, in time linear in the topic's
    length whatever the pattern: an operator's ``(a+)+$`` cannot stall the coordinator's lock."""

    base: str | None = None
    kind: str | None = None
    pattern: str | None = None
    _compiled: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, base: str | None, kind: str | None, pattern: str | None) -> QueueFilter:
        """Raises InvalidInput when no criterion is given or the pattern is not a valid RE2 expression."""
        if base is None and kind is None and pattern is None:
            raise InvalidInput("a bulk action needs a filter: give a base, a kind and/or a pattern")
        return cls(base, kind, pattern, None if pattern is None else compile_pattern(pattern))

    def matches(self, topic: str, base: str, kind: str) -> bool:
        return (
            (self.base is None or base == self.base)
            and (self.kind is None or kind == self.kind)
            and (self._compiled is None or self._compiled.search(topic) is not None)
        )

    def criteria(self) -> dict[str, str | None]:
        return {"base": self.base, "kind": self.kind, "pattern": self.pattern}

    def __str__(self) -> str:
        return " ".join(f"{name}={ANY if value is None else value}" for name, value in self.criteria().items())
