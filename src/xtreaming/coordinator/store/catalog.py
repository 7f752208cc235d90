"""What operators configure, in the store: profiles, queues with their settings, bases and their windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from xtreaming.coordinator.core.windows import Window
from xtreaming.coordinator.patterns import compile_pattern
from xtreaming.coordinator.records import BaseRecord, Profile, QueueRecord, WindowRecord, WorkSettings
from xtreaming.coordinator.schema import BASES, PROFILES, QUEUES, WINDOWS
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.rows import lock_for_writes, new_id, one, upsert
from xtreaming.errors import BaseNotFound, InvalidInput, InvalidProfile, ProfileNotFound, QueueNotFound, WindowNotFound


class CatalogTables:
    """The ``profiles``, ``queues``, ``bases`` and ``windows`` tables; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- profiles ---------------------------------------------------------------------------

    def list_profiles(self) -> list[Profile]:
        with self._database.read() as conn:
            rows = conn.execute(select(PROFILES).order_by(PROFILES.c.position, PROFILES.c.id))
            return [Profile(row.id, row.position, row.pattern, _settings_of(row)) for row in rows]

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None) -> Profile:
        try:
            compile_pattern(pattern)  # matched on RE2, which refuses what would backtrack
        except InvalidInput as exc:
            raise InvalidProfile(f"profile {exc}") from None
        if position is not None and position < 0:
            raise InvalidProfile(f"profile position {position} is negative; give 0 or more")
        with self._database.write() as conn:
            lock_for_writes(conn, PROFILES)  # positions are read, then written
            if position is None:
                last = conn.execute(select(func.max(PROFILES.c.position))).scalar_one()
                position = 0 if last is None else last + 1
            else:
                conn.execute(
                    update(PROFILES).where(PROFILES.c.position >= position).values(position=PROFILES.c.position + 1)
                )
            values = {"position": position, "pattern": pattern, **_settings_row(settings)}
            profile_id = new_id(conn.execute(insert(PROFILES).values(values)))
        return Profile(profile_id, position, pattern, settings)

    def remove_profile(self, profile_id: int) -> None:
        with self._database.write() as conn:
            if conn.execute(delete(PROFILES).where(PROFILES.c.id == profile_id)).rowcount == 0:
                raise ProfileNotFound(f"profile {profile_id} does not exist")

    # -- queues -----------------------------------------------------------------------------

    def list_queues(self) -> list[QueueRecord]:
        with self._database.read() as conn:
            return [_queue_of(row) for row in conn.execute(select(QUEUES).order_by(QUEUES.c.topic))]

    def get_queue(self, topic: str) -> QueueRecord:
        with self._database.read() as conn:
            return _queue_of(one(conn, QUEUES, QUEUES.c.topic == topic, QueueNotFound, f"queue {topic!r}"))

    def add_queue(self, record: QueueRecord) -> QueueRecord:
        if record.discovered_at is None:
            record = replace(record, discovered_at=datetime.now(UTC))
        row = {
            "topic": record.topic,
            "base": record.base,
            "kind": record.kind,
            **_queue_settings_row(record.settings),
            "paused": record.paused,
            "profile_id": record.profile_id,
            "discovered_at": record.discovered_at,
            "overridden": sorted(record.overridden),
        }
        with self._database.write() as conn:
            upsert(conn, QUEUES, [row], keys=("topic",), replace=False)
            return _queue_of(conn.execute(select(QUEUES).where(QUEUES.c.topic == record.topic)).one())

    def update_queue(
        self, topic: str, paused: bool | None, settings: WorkSettings | None, overridden: frozenset[str] | None
    ) -> QueueRecord:
        values: dict[str, Any] = {} if settings is None else _queue_settings_row(settings)
        if paused is not None:
            values["paused"] = paused
        if overridden is not None:
            values["overridden"] = sorted(overridden)
        with self._database.write() as conn:
            if values:
                conn.execute(update(QUEUES).where(QUEUES.c.topic == topic).values(values))
            return _queue_of(one(conn, QUEUES, QUEUES.c.topic == topic, QueueNotFound, f"queue {topic!r}"))

    def follow_profile(self, topic: str, settings: WorkSettings, profile_id: int | None) -> QueueRecord:
        values = {**_queue_settings_row(settings), "profile_id": profile_id}
        with self._database.write() as conn:
            conn.execute(update(QUEUES).where(QUEUES.c.topic == topic).values(values))
            return _queue_of(one(conn, QUEUES, QUEUES.c.topic == topic, QueueNotFound, f"queue {topic!r}"))

    # -- bases and their windows ------------------------------------------------------------

    def list_bases(self) -> list[BaseRecord]:
        with self._database.read() as conn:
            return [_base_of(row) for row in conn.execute(select(BASES).order_by(BASES.c.name))]

    def get_base(self, name: str) -> BaseRecord:
        with self._database.read() as conn:
            return _base_of(one(conn, BASES, BASES.c.name == name, BaseNotFound, f"base {name!r}"))

    def put_base(self, record: BaseRecord) -> BaseRecord:
        row = {
            "name": record.name,
            "max_workers": record.max_workers,
            "min_workers": record.min_workers,
            "paused": record.paused,
        }
        with self._database.write() as conn:
            upsert(conn, BASES, [row], keys=("name",))
        return record

    def list_windows(self, base: str | None) -> list[WindowRecord]:
        query = select(WINDOWS).order_by(WINDOWS.c.base, WINDOWS.c.id)
        if base is not None:
            query = query.where(WINDOWS.c.base == base)
        with self._database.read() as conn:
            return [
                WindowRecord(row.id, row.base, frozenset(row.weekdays), row.start, row.end, row.max_workers)
                for row in conn.execute(query)
            ]

    def add_window(self, record: WindowRecord) -> WindowRecord:
        Window.parse(record.weekdays, record.start, record.end, record.max_workers)
        row = {
            "base": record.base,
            "weekdays": sorted(record.weekdays),
            "start": record.start,
            "end": record.end,
            "max_workers": record.max_workers,
        }
        with self._database.write() as conn:
            one(conn, BASES, BASES.c.name == record.base, BaseNotFound, f"base {record.base!r}")
            window_id = new_id(conn.execute(insert(WINDOWS).values(row)))
        return replace(record, id=window_id)

    def remove_window(self, window_id: int) -> None:
        with self._database.write() as conn:
            if conn.execute(delete(WINDOWS).where(WINDOWS.c.id == window_id)).rowcount == 0:
                raise WindowNotFound(f"window {window_id} does not exist")


def _settings_row(settings: WorkSettings) -> dict[str, Any]:
    return {
        "priority": settings.priority,
        "batch_size": settings.batch_size,
        "command": list(settings.command),
        "handler": settings.handler,
        "timeout_s": settings.timeout_s,
        "max_attempts": settings.max_attempts,
        "backoff_s": settings.backoff_s,
        "backoff_max_s": settings.backoff_max_s,
        "required_labels": dict(settings.required_labels),
        "max_workers": settings.max_workers,
        "one_per_key": settings.one_per_key,
    }


def _queue_settings_row(settings: WorkSettings) -> dict[str, Any]:
    """A queue's settings: ``one_per_key`` is on or off, None (a profile's "the kind decides") meaning off, as
    the column's default does; the catalog gives each queue its kind's value (``catalog.KIND_DEFAULTS``)."""
    return {**_settings_row(settings), "one_per_key": bool(settings.one_per_key)}


def _settings_of(row: Row[Any]) -> WorkSettings:
    return WorkSettings(
        priority=row.priority,
        batch_size=row.batch_size,
        command=tuple(row.command),
        handler=row.handler,
        timeout_s=row.timeout_s,
        max_attempts=row.max_attempts,
        backoff_s=row.backoff_s,
        backoff_max_s=row.backoff_max_s,
        required_labels=dict(row.required_labels),
        max_workers=row.max_workers,
        one_per_key=row.one_per_key,
    )


def _queue_of(row: Row[Any]) -> QueueRecord:
    return QueueRecord(
        row.topic,
        row.base,
        row.kind,
        _settings_of(row),
        row.paused,
        row.profile_id,
        row.discovered_at,
        frozenset(row.overridden),
    )


def _base_of(row: Row[Any]) -> BaseRecord:
    return BaseRecord(row.name, row.max_workers, row.min_workers, row.paused)
