"""The coordinator's tunables, with the defaults a site starts with (``xtreaming.defaults``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from xtreaming.defaults import (
    DEFAULT_BASE_MAX_WORKERS,
    DEFAULT_DISCOVERY_INTERVAL_S,
    DEFAULT_DLQ_REPLAY_MAX_RATE_PER_S,
    DEFAULT_DLQ_REPLAY_RATE_PER_S,
    DEFAULT_GROUP,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HISTORY_RETENTION_DAYS,
    DEFAULT_PARTITIONS,
    DEFAULT_TIME_ZONE,
    DEFAULT_URGENT_PRIORITY,
    DEFAULT_URGENT_SLOTS,
)

if TYPE_CHECKING:  # the coordinator runs, and is tested, without pydantic's settings machinery
    from xtreaming.config import Settings


@dataclass(frozen=True, slots=True)
class CoordinatorOptions:
    """Site-wide coordinator settings: ``from_settings`` at the entry point, the defaults in tests.

    ``group``, ``time_zone``, ``default_base_max_workers``, ``heartbeat_interval_s``,
    ``discovery_interval_s``, ``default_partitions``, the ``dlq_replay_*`` rates, the ``history_*`` and
    ``urgent_*`` options are also ``Settings`` fields (``XTREAMING_GROUP``, …), with the same defaults from
    ``xtreaming.defaults``; the others are fixed here.
    """

    group: str = DEFAULT_GROUP
    time_zone: str = DEFAULT_TIME_ZONE
    default_base_max_workers: int = DEFAULT_BASE_MAX_WORKERS
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    #: A farm silent for this many heartbeat intervals is lost and its leases expire.
    lost_after_heartbeats: int = 3
    #: Added to a queue's ``timeout_s`` for a task's deadline: the farm kills at the timeout, then reports.
    lease_grace_s: float = 30.0
    discovery_interval_s: float = DEFAULT_DISCOVERY_INTERVAL_S
    commit_interval_s: float = 1.0
    #: Partitions of the ``.ACK``/``.DLQ`` topics when they are created (None: as the source topic).
    result_partitions: int | None = None
    #: How many expired tasks are remembered so that a late "ok" still finishes their messages.
    remembered_expired_tasks: int = 10_000
    #: Partitions of a work topic created by a publish request that does not say.
    default_partitions: int = DEFAULT_PARTITIONS
    #: A replay's rate when its request names none, and the most one may ask for (letters per second).
    dlq_replay_rate_per_s: float = DEFAULT_DLQ_REPLAY_RATE_PER_S
    dlq_replay_max_rate_per_s: float = DEFAULT_DLQ_REPLAY_MAX_RATE_PER_S
    #: How often the background loop indexes new records of the ``.DLQ`` topics.
    dlq_index_interval_s: float = 1.0
    #: The per-message history (``coordinator/history.py``): on, kept this many days, in its own database or not.
    history_enabled: bool = True
    history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS
    history_database_url: str | None = None
    #: Each farm's last ``urgent_slots`` slots take only queues of ``urgent_priority`` or above, unless the farm
    #: registers its own; always leaving it at least one ordinary slot (``farms.UrgentSlots``).
    urgent_slots: int = DEFAULT_URGENT_SLOTS
    urgent_priority: int = DEFAULT_URGENT_PRIORITY
    #: The figure history (``figure_history.py``) keeps each minute this many hours: the longest chart asks for 7 days.
    figure_retention_hours: int = 7 * 24

    @classmethod
    def from_settings(cls, settings: Settings) -> CoordinatorOptions:
        """The options ``settings`` sets (the others keep their defaults)."""
        return cls(
            group=settings.group,
            time_zone=settings.time_zone,
            default_base_max_workers=settings.default_base_max_workers,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            discovery_interval_s=settings.discovery_interval_s,
            default_partitions=settings.default_partitions,
            dlq_replay_rate_per_s=settings.dlq_replay_rate_per_s,
            dlq_replay_max_rate_per_s=settings.dlq_replay_max_rate_per_s,
            history_enabled=settings.history_enabled,
            history_retention_days=settings.history_retention_days,
            history_database_url=settings.history_database_url,
            urgent_slots=settings.urgent_slots,
            urgent_priority=settings.urgent_priority,
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)
