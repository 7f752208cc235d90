"""Scheduled publishing's values: a schedule (topic, cron, what to publish, misfire policy) and its ticks.

A schedule publishes, at each tick of its cron expression (in the site's time zone), the records of its
source: a CSV file (as ``xtreaming publish --csv``), one fixed message, or a Python callable that yields
records. Each tick is a row in the store (``store/schedules.py``), claimed before anything is published,
and every record a tick publishes carries ``TICK_HEADER`` (which tick) and ``RECORD_HEADER`` (its place
in the tick's records), so a tick cut short can be finished from the log without repeating a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from xtreaming.errors import XtreamingError

#: Names the tick a record was published by: ``<schedule id>/<tick time, UTC, ISO 8601>``.
TICK_HEADER: Final = "xtreaming-schedule-tick"
#: The record's place (0, 1, …) among its tick's records, after duplicate keys were dropped.
RECORD_HEADER: Final = "xtreaming-schedule-record"


class InvalidSchedule(XtreamingError, ValueError):
    """A schedule that cannot run (a bad cron expression, a CSV that is not there, a callable that does not
    import): refused, nothing stored."""


class ScheduleNotFound(XtreamingError, LookupError):
    """No schedule has the id named."""


class Misfire(StrEnum):
    """What a schedule does with ticks missed while no coordinator could run them (an outage)."""

    ONCE = "once"  # run the latest missed tick once
    SKIP = "skip"  # run none of them: the next tick on time runs


class TickState(StrEnum):
    CLAIMED = "claimed"  # taken by a coordinator, publishing (or cut short: finished by a later one)
    PUBLISHED = "published"
    FAILED = "failed"  # the source failed (a callable raised, the CSV is gone): records published stay
    SKIPPED = "skipped"  # missed during an outage, with the ``skip`` policy


@dataclass(frozen=True, slots=True)
class CsvSource:
    """A CSV file read by the coordinator at each tick, as ``xtreaming publish --csv`` reads it."""

    path: str
    key_column: str = "cpf"
    value_format: str = "json"
    value_column: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class FixedMessage:
    """The same message at every tick."""

    key: str | None
    value: str


@dataclass(frozen=True, slots=True)
class CallableSource:
    """``module:function``, called with no argument at each tick; it returns or yields ``(key, value)`` pairs
    (str or bytes; the key may be None)."""

    target: str


Source = CsvSource | FixedMessage | CallableSource


def source_kind(source: Source) -> str:
    """``csv``, ``message`` or ``callable``: how the store and the API name a source."""
    if isinstance(source, CsvSource):
        return "csv"
    return "message" if isinstance(source, FixedMessage) else "callable"


def source_to_json(source: Source) -> dict[str, Any]:
    if isinstance(source, CsvSource):
        return {
            "kind": "csv",
            "path": source.path,
            "key_column": source.key_column,
            "value_format": source.value_format,
            "value_column": source.value_column,
            "delimiter": source.delimiter,
            "encoding": source.encoding,
        }
    if isinstance(source, FixedMessage):
        return {"kind": "message", "key": source.key, "value": source.value}
    return {"kind": "callable", "target": source.target}


def source_from_json(data: dict[str, Any]) -> Source:
    fields = {k: v for k, v in data.items() if k != "kind"}
    kind = data.get("kind")
    if kind == "csv":
        return CsvSource(**fields)
    if kind == "message":
        return FixedMessage(**fields)
    return CallableSource(**fields)


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    topic: str
    cron: str
    source: Source
    misfire: Misfire
    created_at: datetime
    created_by: str
    #: The latest tick claimed or skipped (None: none yet); ticks at or before it never run again.
    last_tick_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick of a schedule: at most one row per (schedule, tick time)."""

    id: int
    schedule_id: int
    tick_at: datetime
    state: TickState
    #: The coordinator process publishing it, and its last sign of life (another takes a silent one over).
    owner: str | None
    beat_at: datetime
    claimed_at: datetime
    finished_at: datetime | None
    #: The topic's end offsets before the tick's first append: where its records are looked for.
    ends: dict[int, int] | None
    #: Records of the tick in the log (for a published tick: all of them).
    published: int
    #: Earlier ticks missed (an outage) that this one stands for, or skips.
    missed: int
    error: str | None


def tick_name(schedule_id: int, tick_at: datetime) -> str:
    """The value of ``TICK_HEADER`` for a tick: ``7/2026-12-06T14:00:00+00:00``."""
    return f"{schedule_id}/{tick_at.astimezone(UTC).isoformat()}"
