"""Queue, base and window configuration: registration from profiles, operator changes, the audit log."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, TypeVar

from xtreaming.coordinator.core.state import MAX_PRIORITY, MIN_PRIORITY, BaseState
from xtreaming.coordinator.core.windows import Window
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.patterns import compile_pattern
from xtreaming.coordinator.records import BaseRecord, Profile, QueueRecord, WindowRecord, WorkSettings
from xtreaming.coordinator.store import Store
from xtreaming.errors import InvalidInput, InvalidTopicName, QueueNotFound
from xtreaming.topics import TopicName, is_derived

log = logging.getLogger("xtreaming.coordinator")

#: Settings of a queue no profile matches, by kind: COBSINC is the urgent lane of single requests;
#: IMPORTACAO takes ``WorkSettings``' own defaults (priority 5, batches of 500) and one message per key,
#: so that loading a portfolio again while the first load is pending does not do each client twice;
#: COBSINC requests for one client are each wanted.
KIND_DEFAULTS: Final = {
    "COBSINC": WorkSettings(priority=8, batch_size=1, timeout_s=120.0, one_per_key=False),
    "IMPORTACAO": WorkSettings(one_per_key=True),
}
#: Settings of a queue of any other kind no profile matches.
OTHER_KIND_DEFAULTS: Final = WorkSettings()

T = TypeVar("T")


class Catalog:
    """The configuration half of the coordinator, kept in the store; each change made for an operator is audited."""

    def __init__(self, store: Store, options: CoordinatorOptions) -> None:
        self.store = store
        self.options = options
        self._ignored: set[str] = set()
        self._patterns: dict[str, Any] = {}  # profile pattern → compiled RE2 (None: refused, matches nothing)
        self._bases: list[BaseState] | None = None
        #: Moves on at each change of profiles (under the coordinator's lock): a match made without the lock
        #: is used only if no profile changed since (``Matches``).
        self.profiles_version = 0

    # -- discovery ------------------------------------------------------------------------------

    def work_topic(self, name: str) -> TopicName | None:
        """The parsed work topic, or None (logged once per name) for derived and malformed names."""
        try:
            return TopicName.parse(name)
        except InvalidTopicName as exc:
            if name not in self._ignored:
                self._ignored.add(name)
                if is_derived(name):
                    log.debug("topic %s ignored: a result topic, not work", name)
                else:
                    log.warning("topic ignored: %s", exc)
            return None

    def match(self, topics: Iterable[str]) -> Matches:
        """The first matching profile of each of ``topics``: called without the coordinator's lock, so that
        operators' patterns never run under it (RE2 is linear, yet thousands of queues by many profiles add up)."""
        version = self.profiles_version
        profiles = self.store.list_profiles()
        return Matches(version, {topic: self.matching_profile(topic, profiles) for topic in topics})

    def register_queue(self, topic: TopicName, now: datetime, matches: Matches | None = None) -> QueueRecord:
        """Store a new queue with the settings of the first matching profile (or the kind's defaults), as
        ``matches`` found it when no profile changed since (else matched again, now)."""
        profile = self._profile_of(str(topic), matches)
        self.ensure_base(topic.base)
        record = QueueRecord(
            topic=str(topic),
            base=topic.base,
            kind=topic.kind,
            settings=_inherited(topic.kind, profile),
            profile_id=profile.id if profile else None,
            discovered_at=now,
        )
        return self.store.add_queue(record)

    def matching_profile(self, topic: str, profiles: Iterable[Profile] | None = None) -> Profile | None:
        """The first profile (by position) whose pattern matches all of ``topic``, or None (patterns on RE2)."""
        found = self.store.list_profiles() if profiles is None else profiles
        return next((p for p in found if self._fullmatch(p.pattern, topic)), None)

    def _profile_of(self, topic: str, matches: Matches | None) -> Profile | None:
        """``topic``'s profile as ``matches`` has it, if still true; else matched now (profiles changed since)."""
        if matches is not None and matches.version == self.profiles_version and topic in matches.found:
            return matches.found[topic]
        return self.matching_profile(topic)

    def _fullmatch(self, pattern: str, topic: str) -> bool:
        if pattern not in self._patterns:
            try:
                self._patterns[pattern] = compile_pattern(pattern)
            except InvalidInput as exc:  # stored before patterns were RE2: it matches nothing now
                log.warning("profile %s; it matches no topic until it is replaced", exc)
                self._patterns[pattern] = None
        compiled = self._patterns[pattern]
        return compiled is not None and compiled.fullmatch(topic) is not None

    def follow_profiles(self, matches: Matches) -> list[QueueRecord]:
        """Work every queue's settings out again after profiles changed, and store those that differ; the
        profiles as ``matches`` found them (without the lock), a queue registered since matched now.

        Precedence: the queue's own overrides, then the first matching profile, then its kind's defaults;
        so a profile added later reaches queues on kind defaults (or on a profile since removed), never
        a setting an operator set on a queue. Returns the queues changed."""
        changed = []
        for queue in self.store.list_queues():
            profile = self._profile_of(queue.topic, matches)
            own = {name: getattr(queue.settings, name) for name in queue.overridden}
            settings = replace(_inherited(queue.kind, profile), **own)
            profile_id = profile.id if profile else None
            if settings != queue.settings or profile_id != queue.profile_id:
                changed.append(self.store.follow_profile(queue.topic, settings, profile_id))
        return changed

    def ensure_base(self, name: str) -> BaseRecord:
        for base in self.store.list_bases():
            if base.name == name:
                return base
        self._bases = None
        return self.store.put_base(BaseRecord(name, self.options.default_base_max_workers))

    # -- what the scheduler needs ---------------------------------------------------------------

    def base_states(self) -> list[BaseState]:
        if self._bases is None:
            windows: dict[str, list[Window]] = {}
            for w in self.store.list_windows():
                windows.setdefault(w.base, []).append(Window.parse(w.weekdays, w.start, w.end, w.max_workers))
            self._bases = [
                BaseState(b.name, b.max_workers, b.min_workers, tuple(windows.get(b.name, ())), b.paused)
                for b in self.store.list_bases()
            ]
        return self._bases

    # -- operator changes -----------------------------------------------------------------------

    def set_queue(
        self, topic: str, actor: str, *, paused: bool | None = None, changes: Mapping[str, Any] | None = None
    ) -> QueueRecord:
        """Pause/resume a queue and/or change its settings (priority 0..9, batch size, …); audited."""
        current = self.store.get_queue(topic)
        changes = dict(changes or {})
        priority = changes.get("priority")
        if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidInput(f"priority {priority} is not in {MIN_PRIORITY}..{MAX_PRIORITY}")
        if "one_per_key" in changes and changes["one_per_key"] is None:
            raise InvalidInput(f"queue {topic}: one_per_key is true or false (null is for profiles: the kind decides)")
        new_settings = replace(current.settings, **changes) if changes else None
        overridden = current.overridden | changes.keys() if changes else None
        record = self.store.update_queue(topic, paused=paused, settings=new_settings, overridden=overridden)
        details = {**changes, **({} if paused is None else {"paused": paused})}
        self.store.audit(actor, "queue.update", topic, details)
        return record

    def set_base(
        self,
        name: str,
        actor: str,
        *,
        max_workers: int | None = None,
        min_workers: int | None = None,
        paused: bool | None = None,
    ) -> BaseRecord:
        """Change a base's limits or pause it; the minimum may not exceed the maximum; audited."""
        current = self.ensure_base(name)
        record = BaseRecord(
            name,
            current.max_workers if max_workers is None else max_workers,
            current.min_workers if min_workers is None else min_workers,
            current.paused if paused is None else paused,
        )
        if record.max_workers < 0 or record.min_workers < 0:
            raise InvalidInput(f"base {name}: worker limits cannot be negative")
        if record.min_workers > record.max_workers:
            raise InvalidInput(
                f"base {name}: min_workers {record.min_workers} is above max_workers {record.max_workers}"
            )
        self._bases = None
        self.store.put_base(record)
        self.store.audit(
            actor, "base.update", name, _given(max_workers=max_workers, min_workers=min_workers, paused=paused)
        )
        return record

    def add_window(
        self, base: str, actor: str, *, weekdays: Iterable[int], start: str, end: str, max_workers: int
    ) -> WindowRecord:
        """Validate (InvalidWindow names the field) and store a window of ``base``; audited."""
        window = Window.parse(weekdays, start, end, max_workers)
        self.ensure_base(base)
        record = self.store.add_window(
            WindowRecord(0, base, window.weekdays, window.start, window.end, window.max_workers)
        )
        self._bases = None
        self.store.audit(
            actor,
            "window.add",
            base,
            {
                "id": record.id,
                "weekdays": sorted(record.weekdays),
                "start": record.start,
                "end": record.end,
                "max_workers": record.max_workers,
            },
        )
        return record

    def remove_window(self, window_id: int, actor: str) -> None:
        self.store.remove_window(window_id)
        self._bases = None
        self.store.audit(actor, "window.remove", str(window_id), {})

    @staticmethod
    def require(items: Mapping[str, T], topic: str) -> T:
        found = items.get(topic)
        if found is None:
            raise QueueNotFound(f"queue {topic!r} is not registered")
        return found


def _inherited(kind: str, profile: Profile | None) -> WorkSettings:
    """What a queue of ``kind`` gets from ``profile``, or from its kind when no profile matches; a profile
    that leaves ``one_per_key`` out (None) leaves it to the kind."""
    defaults = KIND_DEFAULTS.get(kind, OTHER_KIND_DEFAULTS)
    if profile is None:
        return defaults
    if profile.settings.one_per_key is None:
        return replace(profile.settings, one_per_key=defaults.one_per_key)
    return profile.settings


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Matches:
    """Topics' first matching profiles, found without the coordinator's lock as of ``version`` of the profiles."""

    version: int
    found: dict[str, Profile | None]
