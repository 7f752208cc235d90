"""Operators' regular expressions over topic names (profiles, bulk actions), on RE2.

RE2 matches in time linear in the topic's length whatever the pattern, so a pattern such as ``(A+)+B``
cannot hold the coordinator's lock for seconds as Python's backtracking ``re`` does (9.6 s on 28 A's,
doubling with each one). What needs backtracking (backreferences, lookaround) RE2 refuses at compile
time: the operator is told then, rather than the coordinator stalling later.
"""

from __future__ import annotations

from typing import Any, Final

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from xtreaming.errors import InvalidInput

#: The memory RE2 may spend compiling one operator's pattern; a pattern needing more is refused, not run.
PATTERN_MAX_MEM: Final = 8 << 20


def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 expression; raises InvalidInput naming what RE2 refused (Python's backreferences and
    lookaround are not RE2: they need backtracking)."""
    options = re2.Options()
    options.log_errors = False  # the refusal reaches the operator in the answer, not the server's stderr
    options.max_mem = PATTERN_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidInput(
            f"pattern {pattern!r} is not a valid RE2 expression: {why} (RE2 has no backreferences or lookaround)"
        ) from None
