"""Why a queue cannot take a worker slot now, in the words the operator screen and the API show."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, tzinfo
from typing import Final

from xtreaming.coordinator.core.pending import is_backing_off
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import Labels, QueueState, format_labels
from xtreaming.coordinator.core.windows import WallClock, limit_at

#: Said of a queue whose settings give neither a worker command nor a handler (it is never scheduled).
NO_WORKER: Final = "no worker configured"
#: Said of an urgent queue that the next free slot able to take it would run, while every such slot, the ones
#: reserved for urgent work included, is busy.
WAITING_FOR_URGENT_SLOT: Final = "waiting for an urgent slot"


def reserved_for_urgent(priority: int) -> str:
    """Why a slot reserved for urgent work does not take a queue of a priority below ``priority``."""
    return f"reserved for urgent work (priority ≥ {priority})"


def blocker(
    snapshot: Snapshot,
    queue: QueueState,
    now: datetime,
    clock: WallClock,
    farms: Collection[Labels],
    *,
    slot_farm: str | None = None,
) -> str | None:
    """The first rule that keeps ``queue`` from running on any of ``farms`` now, or None.

    Competition from other queues is not considered here. With ``slot_farm``, ``farms`` holds
    that one farm's labels and a label mismatch is told about that farm.
    """
    base = snapshot.bases[queue.base]
    if not queue.has_worker:
        return NO_WORKER
    if queue.paused:
        return "paused"
    if base.paused:
        return f"base {base.name} paused"
    if not queue.pending:
        return "no pending messages"
    if queue.max_workers is not None and queue.running >= queue.max_workers:
        return (
            f"queue {_at_or_over(queue.running, queue.max_workers)} its max workers {queue.running}/{queue.max_workers}"
        )
    limit = limit_at(base.max_workers, base.windows, clock)
    running = snapshot.base_running(base.name)
    if running >= limit.max_workers:
        where = "" if limit.window is None else f" in window {limit.window.label}"
        return (
            f"base {base.name} {_at_or_over(running, limit.max_workers)} its limit {running}/{limit.max_workers}{where}"
        )
    if not any(queue.required_labels <= labels for labels in farms):
        return _label_mismatch(queue.required_labels, farms, slot_farm)
    return _no_eligible_message(queue, now, snapshot.time_zone)


def _at_or_over(running: int, limit: int) -> str:
    # Lowering a limit never kills running tasks, so a base can be over it for a while.
    return "at" if running == limit else "over"


def _label_mismatch(required: Labels, farms: Collection[Labels], slot_farm: str | None) -> str:
    if slot_farm is not None:
        missing = required - next(iter(farms), frozenset())
        return f"farm {slot_farm} lacks {_labels_phrase(missing)}"
    if not farms:
        return "no farm connected"
    nowhere = {label for label in required if not any(label in labels for labels in farms)}
    if nowhere:
        return f"no farm with {_labels_phrase(nowhere)}"
    return f"no farm with all of labels {format_labels(required)}"


def _labels_phrase(labels: Collection[tuple[str, str]]) -> str:
    return f"{'label' if len(labels) == 1 else 'labels'} {format_labels(labels)}"


def _no_eligible_message(queue: QueueState, now: datetime, time_zone: tzinfo) -> str | None:
    """Why no pending message is ``leasable`` now (back-off, keys in flight), or None when one is.

    The queue's ``waits_for_keys`` and ``ready_at`` hold the rule's verdict (``pending.readiness``), so
    the time told is when the scheduler may next lease from the queue.
    """
    if queue.waits_for_keys:
        return "all pending messages have keys in flight"
    ready_at = queue.ready_at
    if ready_at is None or ready_at <= now:
        return None
    when = _format_until(ready_at, now, time_zone)
    in_flight = queue.keys_in_flight
    if any(m.key in in_flight and not is_backing_off(m, now) for m in queue.pending):
        return f"all pending messages have keys in flight or are in back-off until {when}"
    return f"all pending messages are in back-off until {when}"


def _format_until(until: datetime, now: datetime, time_zone: tzinfo) -> str:
    local = until.astimezone(time_zone)
    if local.date() == now.astimezone(time_zone).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")
