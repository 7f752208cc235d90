"""The coordinator's tunables, with the defaults a site starts with."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class CoordinatorOptions:
    """Site-wide coordinator settings (built from ``Settings`` at the entry point)."""

    #: The consumer group: one per site, so each site's coordinator sees every message once.
    group: str = "xtreaming"
    time_zone: str = "America/Sao_Paulo"
    #: Limit of a base first seen through a new queue, until an operator sets one.
    default_base_max_workers: int = 4
    heartbeat_interval_s: float = 5.0
    #: A farm silent for this many heartbeat intervals is lost and its leases expire.
    lost_after_heartbeats: int = 3
    #: Added to a queue's ``timeout_s`` for a task's deadline: the farm kills at the timeout, then reports.
    lease_grace_s: float = 30.0
    discovery_interval_s: float = 5.0
    commit_interval_s: float = 1.0
    #: Partitions of the ``.ACK``/``.DLQ`` topics when they are created (None: as the source topic).
    result_partitions: int | None = None
    #: How many expired tasks are remembered so that a late "ok" still finishes their messages.
    remembered_expired_tasks: int = 10_000

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)
