"""Operator controls: pausing, priorities, settings, base limits, windows and profiles, and reading them back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.core.state import MAX_PRIORITY, MIN_PRIORITY
from xtreaming.coordinator.queue_filter import QueueFilter
from xtreaming.coordinator.records import AuditEntry, BaseRecord, Profile, QueueRecord, WindowRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime
from xtreaming.errors import InvalidInput, QueueNotFound


class Controls:
    """What operators change: stored and audited first, then applied to the coordinator's memory under
    its lock, so the next decision sees the change and long-polling farms wake up to it.

    ``queue`` finds a registered queue (``QueueNotFound`` otherwise); ``queue_changed`` and
    ``bases_changed`` tell the coordinator which part of the scheduler's snapshot to rebuild."""

    def __init__(
        self,
        catalog: Catalog,
        changed: threading.Condition,
        queue: Callable[[str], QueueRuntime],
        queue_changed: Callable[[str], None],
        bases_changed: Callable[[], None],
    ) -> None:
        self.catalog = catalog
        self.store = catalog.store
        self._changed = changed
        #: One change of profiles at a time: its matching runs without the coordinator's lock (``_follow_profiles``).
        self._profiles_changing = threading.Lock()
        self._queue = queue
        self._queue_changed = queue_changed
        self._bases_changed = bases_changed
        #: Every base's windows as ``windows`` last read them, with the count of changes made then.
        self._windows: tuple[int, tuple[WindowRecord, ...]] | None = None
        self._window_changes = 0

    # -- queues ---------------------------------------------------------------------------------

    def update_queue(
        self, topic: str, actor: str, *, paused: bool | None = None, priority: int | None = None
    ) -> QueueRecord:
        """Pause/resume a queue or set its priority."""
        return self._set_queue(topic, actor, paused, {} if priority is None else {"priority": priority})

    def move_priority(self, topic: str, delta: int, actor: str) -> QueueRecord:
        """Raise (+1) or lower (-1) a queue's priority, staying within 0..9."""
        with self._changed:
            current = self._queue(topic).record.settings.priority
            return self.update_queue(topic, actor, priority=min(MAX_PRIORITY, max(MIN_PRIORITY, current + delta)))

    def configure_queue(self, topic: str, actor: str, changes: Mapping[str, object]) -> QueueRecord:
        """Override settings of one queue (batch size, command, timeout, labels, …); the next task has them."""
        return self._set_queue(topic, actor, None, changes)

    def _set_queue(self, topic: str, actor: str, paused: bool | None, changes: Mapping[str, object]) -> QueueRecord:
        with self._changed:
            queue = self._queue(topic)  # an unknown queue is refused before anything is stored
            queue.with_record(self.catalog.set_queue(topic, actor, paused=paused, changes=changes))
            self._queue_changed(topic)
            self._changed.notify_all()
            return queue.record

    def update_matching(
        self,
        queues: QueueFilter,
        actor: str,
        *,
        paused: bool | None = None,
        priority: int | None = None,
        delta: int | None = None,
        dry_run: bool = False,
    ) -> list[tuple[QueueRecord, QueueRecord]]:
        """Pause/resume every queue ``queues`` lets through, or set (``priority``) or move (``delta``, within
        0..9) its priority, as one change: one store transaction with one audit entry (the filter, the action,
        the queues matched and those it changed), applied under the coordinator's lock, so no other change
        lands between two of its queues and a failure changes none of them. Returns each matching queue
        before and after the change (as it would be on a ``dry_run``, which stores nothing). Raises
        QueueNotFound (nothing changes) when no queue matches."""
        with self._changed:
            matching = [
                self._queue(r.topic) for r in self.store.list_queues() if queues.matches(r.topic, r.base, r.kind)
            ]
            if not matching:
                raise QueueNotFound(f"no queue matches {queues}")
            before = [q.record for q in matching]
            after = [_changed_record(r, paused, priority, delta) for r in before]
            changed = [(q, r) for q, r in zip(matching, after, strict=True) if r != q.record]
            if dry_run:
                return list(zip(before, after, strict=True))
            action = "pause" if paused else "resume" if paused is not None else "priority"
            details: dict[str, object] = {"action": action, "filter": queues.criteria()}
            details.update({k: v for k, v in (("priority", priority), ("delta", delta)) if v is not None})
            details.update(queues=[r.topic for r in after], changed=[r.topic for _, r in changed])
            with self.store.transaction():  # every queue and the audit entry, or none of them
                stored = [
                    self.store.update_queue(r.topic, paused=r.paused, settings=r.settings, overridden=r.overridden)
                    for _, r in changed
                ]
                self.store.audit(actor, "queues.bulk", str(queues), details)
            for (queue, _), record in zip(changed, stored, strict=True):
                queue.with_record(record)
                self._queue_changed(record.topic)
            self._changed.notify_all()
            return [(old, q.record) for old, q in zip(before, matching, strict=True)]

    # -- bases and their windows ----------------------------------------------------------------

    def update_base(
        self,
        name: str,
        actor: str,
        *,
        max_workers: int | None = None,
        min_workers: int | None = None,
        paused: bool | None = None,
    ) -> BaseRecord:
        """Change a base's limits or pause it; running tasks are not killed."""
        with self._changed:
            record = self.catalog.set_base(name, actor, max_workers=max_workers, min_workers=min_workers, paused=paused)
            self._bases_changed()
            self._changed.notify_all()
            return record

    def add_window(
        self, base: str, actor: str, *, weekdays: Iterable[int], start: str, end: str, max_workers: int
    ) -> WindowRecord:
        with self._changed:
            try:
                record = self.catalog.add_window(
                    base, actor, weekdays=weekdays, start=start, end=end, max_workers=max_workers
                )
            finally:  # stored or not, the windows are read again
                self._window_changes += 1
            self._bases_changed()
            self._changed.notify_all()
            return record

    def remove_window(self, window_id: int, actor: str) -> None:
        with self._changed:
            try:
                self.catalog.remove_window(window_id, actor)
            finally:
                self._window_changes += 1
            self._bases_changed()
            self._changed.notify_all()

    def windows(self) -> list[WindowRecord]:
        """Every base's windows, without the coordinator's lock (the screen asks every second, and waits for no
        lease): read from the store once after each change, which only ``add_window`` and ``remove_window`` make.
        The changes are counted after they are stored and read before the store is: what is kept under a count
        has every change up to it."""
        changes, kept = self._window_changes, self._windows
        if kept is None or kept[0] != changes:
            kept = self._windows = (changes, tuple(self.store.list_windows()))
        return list(kept[1])

    # -- profiles: stored, then every queue's settings worked out again -------------------------

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None, actor: str) -> Profile:
        """A profile for the queues it matches first, registered now or later, except for the settings an
        operator set on a queue; audited with the queues it changed."""
        with self._profiles_changing:
            with self._changed:
                profile = self.store.add_profile(pattern, settings, position)
                self.catalog.profiles_version += 1
            applied = self._follow_profiles()
            with self._changed:
                details = {"id": profile.id, "position": profile.position, "queues": applied}
                self.store.audit(actor, "profile.add", pattern, details)
            return profile

    def remove_profile(self, profile_id: int, actor: str) -> None:
        """Remove a profile: its queues follow the next matching profile, else their kind's defaults."""
        with self._profiles_changing:
            with self._changed:
                self.store.remove_profile(profile_id)
                self.catalog.profiles_version += 1
            applied = self._follow_profiles()
            with self._changed:
                self.store.audit(actor, "profile.remove", str(profile_id), {"queues": applied})

    def _follow_profiles(self) -> int:
        """Every queue's settings after a change of profiles: the patterns matched without the coordinator's
        lock, the queues changed under it (one registered meanwhile is matched then)."""
        matches = self.catalog.match(queue.topic for queue in self.store.list_queues())
        with self._changed:
            changed = self.catalog.follow_profiles(matches)
            for record in changed:
                self._queue(record.topic).with_record(record)
                self._queue_changed(record.topic)
            if changed:
                self._changed.notify_all()
            return len(changed)

    # -- the audit log: in the store only, so no lock --------------------------------------------

    def profiles(self) -> list[Profile]:
        return self.store.list_profiles()

    def audit_log(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        """Operator actions, newest first, from before ``before_id`` when given."""
        return self.store.list_audit(limit=limit, before_id=before_id)


def _changed_record(record: QueueRecord, paused: bool | None, priority: int | None, delta: int | None) -> QueueRecord:
    """``record`` paused/resumed or with its priority set or moved; a priority an operator gives becomes the
    queue's own (overridden), as one given to that queue alone does, so no profile change undoes it."""
    if paused is not None:
        return replace(record, paused=paused)
    if priority is None and delta is not None:
        priority = min(MAX_PRIORITY, max(MIN_PRIORITY, record.settings.priority + delta))
    if priority is None or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority {priority} is not in {MIN_PRIORITY}..{MAX_PRIORITY}")
    settings = replace(record.settings, priority=priority)
    return replace(record, settings=settings, overridden=record.overridden | {"priority"})
