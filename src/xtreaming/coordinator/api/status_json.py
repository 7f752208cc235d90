"""The status answer's JSON (``GET /api/status``), each queue's row serialized once and kept while the row is.

Thousands of queue rows make most of the answer, and between two polls nearly all of them are the same: the
coordinator keeps a row, the same object, while nothing it shows changed (``coordinator/screen_rows.py``).
``StatusJson`` keeps each row's JSON beside it and serializes only the rows that are new objects; the rest of
the answer (the time, the broker, the bases, the farms) is serialized on every request. The pieces are joined in
the order of ``schemas.Status``, giving the very bytes ``plain_json`` gives, which tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter

from xtreaming.coordinator.api.schemas import BaseRow, FarmRow, LeaderRow
from xtreaming.coordinator.figures import QueueFigures


@dataclass(frozen=True, slots=True)
class StatusBody:
    """``schemas.Status`` with the queue rows left as the figures' dataclasses: the same JSON, serialized by
    pydantic-core without building and validating a model per row (thousands of rows, every second)."""

    now: datetime
    broker_ok: bool
    broker_error: str | None
    queues: list[QueueFigures]
    bases: list[BaseRow]
    farms: list[FarmRow]
    time_zone: str
    leader: LeaderRow | None = None


@dataclass(frozen=True, slots=True)
class _Head:
    """The fields of ``StatusBody`` before the queues."""

    now: datetime
    broker_ok: bool
    broker_error: str | None


@dataclass(frozen=True, slots=True)
class _Tail:
    """The fields of ``StatusBody`` after the queues."""

    bases: list[BaseRow]
    farms: list[FarmRow]
    time_zone: str
    leader: LeaderRow | None


_STATUS = TypeAdapter(StatusBody)
_HEAD = TypeAdapter(_Head)
_TAIL = TypeAdapter(_Tail)
_ROW = TypeAdapter(QueueFigures)


def plain_json(body: StatusBody) -> bytes:
    """The answer serialized in one pass, every row anew: what ``StatusJson.dump`` gives."""
    return _STATUS.dump_json(body)


class StatusJson:
    """Serializes status answers, keeping each queue row's JSON while the row is the same object. Safe to call from
    several threads: each call replaces what is kept as a whole (a row serialized twice at worst)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[QueueFigures, bytes]] = {}

    def dump(self, body: StatusBody) -> bytes:
        kept, rows = self._rows, {}
        for row in body.queues:
            found = kept.get(row.topic)
            # Rows are frozen: the same object has the same JSON (and, being kept here, its id is not reused).
            rows[row.topic] = found if found is not None and found[0] is row else (row, _ROW.dump_json(row))
        self._rows = rows
        head = _HEAD.dump_json(_Head(body.now, body.broker_ok, body.broker_error))
        tail = _TAIL.dump_json(_Tail(body.bases, body.farms, body.time_zone, body.leader))
        queues = b",".join(rows[row.topic][1] for row in body.queues)
        return b"".join((head[:-1], b',"queues":[', queues, b"],", tail[1:]))
