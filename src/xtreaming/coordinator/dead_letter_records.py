"""Dead letters as plain values: a letter's state, the filter operators select letters by, a replay, and the
errors of acting on them. What the dead-letter index (``store/dead_letters.py``) keeps and returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from xtreaming.errors import XtreamingError
from xtreaming.topics import DLQ_SUFFIX
from xtreaming.wire.message_id import message_id

#: The header linking a replayed message to the DLQ record it came from: ``<dlq topic>/<partition>/<offset>``.
REPLAY_OF: Final = "xtreaming-replay-of"
#: The error a record gets in the index when our headers are missing (a DLQ topic written by hand).
FOREIGN_ERROR: Final = "not written by Xtreaming"
#: The headers ``results.dlq_records`` adds to a dead message, and those ``fitting.fit_dlq`` adds when it cuts
#: one to fit (``CUT``): the indexer reads the first three, and a replay takes them all off.
SOURCE: Final = "xtreaming-source"
ATTEMPTS: Final = "xtreaming-attempts"
ERRORS: Final = "xtreaming-errors"
CUT: Final = frozenset({"xtreaming-truncated", "xtreaming-truncated-key", "xtreaming-dropped-headers"})
DLQ_HEADERS: Final = frozenset({SOURCE, ATTEMPTS, ERRORS, "xtreaming-task", *CUT})
#: Records asked of the broker in one read of a ``.DLQ`` or work topic.
READ_RECORDS: Final = 1000
#: The most keys one filter may name: the list goes into one SQL ``IN``.
MAX_FILTER_KEYS: Final = 1000


def dlq_message_id(topic: str, partition: int, offset: int) -> str:
    """The message id of a dead letter of work topic ``topic`` on its ``.DLQ`` topic (what ``xtreaming-replay-of``
    holds): ``("T", 0, 5)`` → ``"T.DLQ/0/5"``."""
    return message_id(f"{topic}.{DLQ_SUFFIX}", partition, offset)


class LetterState(StrEnum):
    """Where a dead letter is: open (``dead``), reserved by a replay (``queued``), being appended
    (``replaying``), back on its work topic (``replayed``), or set aside by an operator (``skipped``).

    ``queued`` is not in the first sketch of the index: a replay reserves every letter it matched when it
    is created, so its total is exact, a second request for the same letters finds none, and a replay cut
    short resumes with exactly the letters it had left."""

    DEAD = "dead"
    QUEUED = "queued"
    REPLAYING = "replaying"
    REPLAYED = "replayed"
    SKIPPED = "skipped"


class ReplayState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class NoDeadLetters(XtreamingError, LookupError):
    """A replay, skip or purge whose filter matches no letter it could act on: nothing changed."""


class ReplayNotFound(XtreamingError, LookupError):
    """No replay has the id named."""


class InvalidLetterFilter(XtreamingError, ValueError):
    """A filter or replay request that cannot be used (an empty time range, a rate over the site's cap)."""


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """The dead letters of work topic ``topic`` whose error contains ``error`` (any case), that died in
    ``[since, until)``, and whose key is one of ``keys``; a criterion left out lets every letter through."""

    topic: str
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    keys: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidLetterFilter(
                f"since {self.since.isoformat()} is not before until {self.until.isoformat()}: no letter could match"
            )
        if len(self.keys) > MAX_FILTER_KEYS:
            raise InvalidLetterFilter(f"{len(self.keys)} keys: a filter names at most {MAX_FILTER_KEYS}")

    def criteria(self) -> dict[str, Any]:
        """The filter as JSON (stored with a replay and in the audit log)."""
        return {
            "topic": self.topic,
            "error": self.error,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "keys": [k.decode("utf-8", "replace") for k in self.keys],
        }

    def __str__(self) -> str:
        parts = [self.topic]
        if self.error:
            parts.append(f"error contains {self.error!r}")
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"until {self.until.isoformat()}")
        if self.keys:
            shown = ", ".join(k.decode("utf-8", "replace") for k in self.keys[:3])
            parts.append(f"key in ({shown}{', …' if len(self.keys) > 3 else ''})")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a ``.DLQ`` topic, as indexed: where it is, where it came from, why it died, and what
    operators did with it (``replayed_as``: the message id of its copy on the work topic)."""

    id: int
    topic: str
    partition: int
    offset: int
    source_partition: int | None
    source_offset: int | None
    key: bytes | None
    error: str
    attempts: int
    dead_at: datetime
    state: LetterState
    replay_id: int | None = None
    replayed_as: str | None = None

    @property
    def dlq_id(self) -> str:
        """The message id of its record on the ``.DLQ`` topic."""
        return dlq_message_id(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Open letters of a topic sharing an error: how many, and the first few (message id of the DLQ record, key)."""

    error: str
    count: int
    samples: Sequence[tuple[str, bytes | None]] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TopicLetters:
    """A work topic's dead letters by state, and its open ones grouped by error (largest group first)."""

    topic: str
    open: int
    replayed: int
    skipped: int
    errors: Sequence[ErrorGroup]


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay: the letters it reserved (``total``) and appended so far (``done``), at most ``rate_per_s``.

    ``batch_ends`` are the work topic's end offsets taken before the batch in flight was appended (None
    between batches): after a crash, the batch's letters are looked for from there on."""

    id: int
    topic: str
    filter: dict[str, Any]
    actor: str
    created_at: datetime
    total: int
    done: int
    rate_per_s: float
    state: ReplayState
    changed_at: datetime
    error: str | None = None
    batch_ends: dict[int, int] | None = None
