"""What a farm is started with (``FarmConfig``) and the defaults ``xtreaming farm`` offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: Worker slots: how many tasks the farm runs at once.
DEFAULT_SLOTS: Final = 2
#: Failed tasks' directories kept for someone to look at what the worker saw.
DEFAULT_KEEP_FAILED: Final = 50
#: How long an idle farm's lease request waits for work; also the longest a stop waits for it.
DEFAULT_LEASE_WAIT_S: Final = 5.0
#: After the last task, how long a stopping farm keeps trying to deliver its results.
DEFAULT_FLUSH_S: Final = 30.0
#: Where task directories go, one folder per farm name, unless ``--work-dir`` says otherwise.
DEFAULT_WORK_ROOT: Final = Path(".xtreaming/farm")
#: A farm that cannot renew its leases stops its tasks this many heartbeat intervals before the
#: coordinator would count it lost (``lost_after_heartbeats``, from the registration answer) and lease
#: them again: the margin covers killing the worker trees and a heartbeat that was on its way.
UNREACHABLE_MARGIN_HEARTBEATS: Final = 1


@dataclass(frozen=True, slots=True)
class FarmConfig:
    """What ``xtreaming farm`` was started with."""

    coordinator_url: str
    name: str
    slots: int
    labels: Mapping[str, str] = field(default_factory=dict)
    work_dir: Path = DEFAULT_WORK_ROOT
    token: str | None = None
    keep_failed: int = DEFAULT_KEEP_FAILED
    lease_wait_s: float = DEFAULT_LEASE_WAIT_S
    flush_s: float = DEFAULT_FLUSH_S
    #: Keep tasks running while the coordinator does not answer, however long: it may lease them again
    #: once it counts the farm lost, and the same key may then run twice. Off: they are stopped first.
    keep_running_when_unreachable: bool = False
    #: The last ``urgent_slots`` slots take only queues of priority ``urgent_priority`` or above (fewer than
    #: ``slots``); None: as the coordinator's site setting says.
    urgent_slots: int | None = None
    urgent_priority: int | None = None
