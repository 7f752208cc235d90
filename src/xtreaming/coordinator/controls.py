"""Operator controls: pausing, priorities, settings, base limits, windows and profiles, and reading them back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.core.state import MAX_PRIORITY, MIN_PRIORITY
from xtreaming.coordinator.records import AuditEntry, BaseRecord, Profile, QueueRecord, WindowRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime


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
        self._queue = queue
        self._queue_changed = queue_changed
        self._bases_changed = bases_changed

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
            record = self.catalog.add_window(
                base, actor, weekdays=weekdays, start=start, end=end, max_workers=max_workers
            )
            self._bases_changed()
            self._changed.notify_all()
            return record

    def remove_window(self, window_id: int, actor: str) -> None:
        with self._changed:
            self.catalog.remove_window(window_id, actor)
            self._bases_changed()
            self._changed.notify_all()

    def windows(self) -> list[WindowRecord]:
        """Every base's windows (read from the store: the screen asks every second, and waits for no lease)."""
        return self.store.list_windows()

    # -- profiles and the audit log: in the store only, so no lock -------------------------------

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None, actor: str) -> Profile:
        """A profile for queues registered from now on; audited."""
        profile = self.store.add_profile(pattern, settings, position)
        self.store.audit(actor, "profile.add", pattern, {"id": profile.id, "position": profile.position})
        return profile

    def remove_profile(self, profile_id: int, actor: str) -> None:
        self.store.remove_profile(profile_id)
        self.store.audit(actor, "profile.remove", str(profile_id), {})

    def profiles(self) -> list[Profile]:
        return self.store.list_profiles()

    def audit_log(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        """Operator actions, newest first, from before ``before_id`` when given."""
        return self.store.list_audit(limit=limit, before_id=before_id)
