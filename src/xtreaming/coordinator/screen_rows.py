"""The operator screen's queue rows kept between reads: a row is worked out again only when what it shows changed.

Working out a queue's row (``figures.queue_figures``) takes some microseconds; at thousands of queues, every
second, that was most of a status request, though between two reads nearly every row is the same. ``QueueRows``
keeps each queue's row with the inputs it was worked out from: every value ``queue_figures`` reads, compared
by value on the next read (``_inputs``), so a row changes the moment one of them does, whoever changed it. The
one input they leave out is time: a queue whose figures move with it (it finished messages in the last hour: its
speeds fall as time passes, its "failing" may turn) is worked out on every read (``QueueActivity.is_still``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from operator import attrgetter
from typing import Final

from xtreaming.coordinator.activity import QueueActivity
from xtreaming.coordinator.figures import BaseFigures, QueueFigures, queue_figures
from xtreaming.coordinator.runtime import QueueRuntime

#: What ``queue_figures`` reads of a queue besides its partitions (``progress``), its running tasks and
#: its activity; the record is compared as a whole (its settings, paused, base and kind): replaced, never changed.
_QUEUE: Final = attrgetter("record", "retrying", "dead", "duplicates")
#: What it reads of the queue's base.
_BASE: Final = attrgetter("in_use", "limit", "window", "paused")
#: Every field of an activity but its rings (which only the speeds read, and those only move while it is not
#: still): a field added there is compared here without a word.
_ACTIVITY: Final = attrgetter(*(f.name for f in fields(QueueActivity) if f.name not in ("seconds", "minutes")))


class QueueRows:
    """Each queue's row as last worked out, by topic (see the module docstring). Not thread-safe: the coordinator's
    lock guards it, as it guards what the rows are worked out from."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple[object, ...], QueueFigures]] = {}

    def row(self, queue: QueueRuntime, base: BaseFigures, in_flight: int, now: datetime) -> QueueFigures:
        """``queue_figures(queue, base, in_flight, now)``: the row kept when none of its inputs changed since, the
        same object (so that what is made of it, its JSON, may be kept too); worked out again otherwise."""
        activity = queue.activity
        if not activity.is_still(now):
            row = queue_figures(queue, base, in_flight, now)
            self._rows.pop(queue.topic, None)
            return row
        inputs = _inputs(queue, base, in_flight)
        kept = self._rows.get(queue.topic)
        if kept is not None and kept[0] == inputs:
            return kept[1]
        row = queue_figures(queue, base, in_flight, now)
        self._rows[queue.topic] = (inputs, row)
        return row


def _inputs(queue: QueueRuntime, base: BaseFigures, in_flight: int) -> tuple[object, ...]:
    """Everything ``queue_figures`` reads but the time, as values compared on the next read."""
    return (*_QUEUE(queue), len(queue.running), *queue.progress(), in_flight, *_BASE(base), *_ACTIVITY(queue.activity))
